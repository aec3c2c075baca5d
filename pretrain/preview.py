"""``pretrain preview``: look at what the loader feeds the model before spending hours on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

#: Pixels left of the images for each row's name.
LABEL_WIDTH = 84


def preview(
    snapshot: str,
    out: Path,
    *,
    size: int = 64,
    n: int = 16,
    mixup_k: int = 6,
    seed: int = 0,
    db: str | None = None,
    augment: str = "auto",
) -> Path:
    """A PNG grid: row 1 rendered images, row 2 one augmented view of each (``augment``: a preset,
    or ``auto``, what `pretrain train` uses by default), row 3 MixUp images of ``mixup_k``
    programs (when ``mixup_k`` >= 2), each row named on its left. The credits of the programs
    shown go beside it (``preview.credits.md``)."""
    from PIL import Image, ImageDraw

    from corpus.attribution import write_credits
    from corpus.paths import check_picture_file, save_picture
    from pretrain.augment import Augment
    from pretrain.config import TrainConfig, augment_of
    from pretrain.data import ShaderStream, StreamConfig
    from pretrain.snapshot import open_snapshot

    out = Path(out)
    check_picture_file(out)  # before minutes of rendering, not after
    preset = augment_of(TrainConfig(augment=augment))
    augmenter = Augment(size, preset)  # an unknown preset is refused before rendering too
    snap = open_snapshot(snapshot, db=db)
    plain = next(iter(ShaderStream(snap, StreamConfig(size=size, batch_size=n, seed=seed), max_batches=1)))
    images = plain["images"]
    shown = plain["labels"].tolist()
    x = images.permute(0, 3, 1, 2).float() / 255.0
    g = torch.Generator().manual_seed(seed)
    augmented = (augmenter(x, g).clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1)
    rows, names = [images, augmented], ["rendered", f"{preset} views"]
    if mixup_k >= 2:
        config = StreamConfig(size=size, batch_size=n, seed=seed, mixup_k=mixup_k)
        mixed = next(iter(ShaderStream(snap, config, max_batches=1)))
        rows.append(mixed["images"])
        shown += mixed["mix_labels"].flatten().tolist()
        names.append(f"MixUp k={mixup_k}")
    pad, label_w = 2, LABEL_WIDTH
    grid = np.full((len(rows) * (size + pad) + pad, label_w + n * (size + pad) + pad, 3), 32, np.uint8)
    for r, row in enumerate(rows):
        for c in range(n):
            y0, x0 = pad + r * (size + pad), label_w + pad + c * (size + pad)
            grid[y0 : y0 + size, x0 : x0 + size] = row[c].numpy()
    picture = Image.fromarray(grid)
    draw = ImageDraw.Draw(picture)
    for r, name in enumerate(names):
        draw.text((4, pad + r * (size + pad) + max(0, size // 2 - 6)), name, fill=(230, 230, 230))
    save_picture(picture, out)
    write_credits(out, [snap.entries[i] for i in dict.fromkeys(shown)])
    return out
