"""``pretrain export``: the encoder's weights, and what must ship with them.

Next to the weights go ``MODEL_CARD.md`` (what the encoder is, how to load it, the snapshot it was
trained on by name and manifest hash, the licences of its programs with their counts, the training
config) and ``ATTRIBUTION.md``, the snapshot's own, byte for byte (its hash is in the snapshot's
``snapshot.json``): the licences of many programs (CC-BY and friends) ask for attribution with
whatever is made from them, so the two files travel together with the weights.

A checkpoint names its snapshot (``config["snapshot"]``: the folder or the catalogue name it was
trained from, and ``manifest_sha256``); the export opens that snapshot, or the one given, and
refuses one whose manifest differs. One model per folder: the export never overwrites a
MODEL_CARD.md or ATTRIBUTION.md that another export or anyone else wrote there.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from corpus.errors import NotFoundError, SnapshotError, UsageProblem
from corpus.filters import LIMITED_USE_CLASSES
from corpus.paths import atomic_write
from pretrain.checkpoint import check_export, load_checkpoint, write_encoder
from pretrain.config import augment_of, peak_lr, setting, weight_decay_of
from pretrain.snapshot import SnapshotData, open_snapshot

CARD = "MODEL_CARD.md"
ATTRIBUTION = "ATTRIBUTION.md"


def _marker(weights: Path) -> str:
    return f"<!-- written by pretrain export for {weights.name}; export again rather than edit -->"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _training_snapshot(ckpt: dict[str, Any], snapshot: str | None, db: str | None) -> SnapshotData:
    """The snapshot the checkpoint was trained on: ``snapshot`` if given, else the one it names."""
    config = ckpt["config"]
    where = snapshot or config.get("snapshot")
    hint = (
        "the model card needs the snapshot this encoder was trained on: pass --snapshot with its "
        "exported folder, or its name and --db the catalogue that holds it"
    )
    if not where:
        raise UsageProblem("the checkpoint names no snapshot", hint=hint)
    try:
        data = open_snapshot(where, db=db or config.get("db") or None)
    except (NotFoundError, SnapshotError) as exc:
        raise type(exc)(exc.message, hint=hint) from exc
    if data.manifest_sha256 != ckpt["manifest_sha256"]:
        raise SnapshotError(
            f"snapshot {data.name} ({data.root}) is not the one this encoder was trained on "
            f"(manifest {data.manifest_sha256[:12]}..., "
            f"the checkpoint's is {ckpt['manifest_sha256'][:12]}...)",
            hint="pass --snapshot with the snapshot it was trained on",
        )
    return data


def _check_free(folder: Path, weights: Path, attribution: bytes) -> None:
    """Refuse to overwrite another model's card, or an ATTRIBUTION.md of other programs."""
    card = folder / CARD
    if card.exists() and card.read_text(encoding="utf-8", errors="replace").split("\n", 1)[0] != _marker(
        weights
    ):
        raise UsageProblem(
            f"{card} exists and does not describe {weights.name}",
            hint="export each model into a folder of its own (--out DIR/NAME.pt)",
        )
    existing = folder / ATTRIBUTION
    if existing.exists() and existing.read_bytes() != attribution:
        raise UsageProblem(
            f"{existing} exists and is not the attribution of this encoder's snapshot",
            hint="export each model into a folder of its own (--out DIR/NAME.pt)",
        )


def _licence_table(entries: list[dict[str, Any]]) -> list[str]:
    counts = Counter(
        (e.get("licence_spdx") or "NOASSERTION", e.get("licence_class") or "unknown") for e in entries
    )
    rows = ["| SPDX | class | programs |", "| --- | --- | ---: |"]
    rows += [
        f"| {spdx} | {cls} | {n} |"
        for (spdx, cls), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    by_class = Counter(cls for (_, cls), n in counts.items() for _ in range(n))
    limited = {cls: by_class[cls] for cls in LIMITED_USE_CLASSES if by_class.get(cls)}
    if limited:
        listed = ", ".join(f"{cls} {n}" for cls, n in limited.items())
        rows += [
            "",
            f"{sum(limited.values())} of {len(entries)} programs are under licences that limit their use "
            f"({listed}; `unknown` includes code with no licence at all, which is all rights reserved). "
            "Whether trained weights are a derivative of their training data is not settled: check "
            "these licences before any commercial use of the weights.",
        ]
    return rows


def _lr(config: dict[str, Any], ckpt: dict[str, Any]) -> str:
    """The peak learning rate, and where it came from when the config left it to the default."""
    world = int((ckpt.get("extra") or {}).get("world_size") or 1)
    rate = f"{peak_lr(config, world):.4g}"
    if setting(config, "lr"):
        return rate
    if setting(config, "optimizer") == "sgd":
        ranks = f"{world} rank{'s' if world != 1 else ''}"
        return f"{rate} (SGD's default: 0.1 × {setting(config, 'batch_size')} images × {ranks} / 256)"
    return f"{rate} (AdamW's default)"


def model_card(
    ckpt: dict[str, Any], snapshot: SnapshotData, written: dict[str, Any], weights_sha256: str
) -> str:
    """The text of MODEL_CARD.md for weights ``written`` (what :func:`write_encoder` returned)."""
    config = ckpt["config"]
    weights = Path(written["path"])
    meta = json.loads((snapshot.root / "snapshot.json").read_text(encoding="utf-8"))
    arch = written["arch"]
    if written["format"] == "torchvision":
        load = (
            f"`m = torchvision.models.{arch}(); m.load_state_dict(torch.load('{weights.name}'))`: "
            "the encoder's weights and a freshly initialised 1000-class `fc` (pretraining learns no "
            "classifier); replace `fc` for your task, or set it to `torch.nn.Identity()` for features"
        )
    else:
        load = f"`pretrain.models.build_backbone({arch!r})[0].load_state_dict(torch.load('{weights.name}'))`"
    sampled = config.get("programs") or len(snapshot)
    filters = meta.get("filters") or {}
    lines = [
        _marker(weights),
        f"# {weights.stem}",
        "",
        f"{'An' if arch[:1].lower() in 'aeiou' else 'A'} {arch} image encoder "
        "pretrained by imageprograms (`pretrain train`) on images rendered "
        "live from GLSL shader programs: procedural images, no photographs.",
        "",
        "| | |",
        "| --- | --- |",
        f"| weights | `{weights.name}`: {written['format']} state_dict, {written['keys']} tensors, "
        f"{written['dim']}-d features, sha256 `{weights_sha256}` |",
        f"| load | {load} |",
        f"| training | {config.get('method')}, {ckpt['step']} of {config.get('steps')} steps of "
        f"{config.get('batch_size')} images at {config.get('size')} px, optimizer {config.get('optimizer')}, "
        f"peak learning rate {_lr(config, ckpt)}, weight decay {weight_decay_of(config):g}, "
        f"views {augment_of(config)}, seed {config.get('seed')} |",
        f"| snapshot | **{snapshot.name}**, manifest sha256 `{snapshot.manifest_sha256}`, "
        f"{len(snapshot)} programs ({sampled} sampled in training) |",
        f"| snapshot made | {meta.get('created', '?')}; licence classes "
        f"{', '.join(filters.get('licence_classes') or []) or '?'}; vetting policy "
        f"{meta.get('policy_hash') or 'none'} |",
        f"| attribution | [{ATTRIBUTION}]({ATTRIBUTION}), the snapshot's own: every program's author, "
        "title, URL and licence. Keep it with the weights. |",
        "",
        "## Licences of the training programs",
        "",
        *_licence_table(snapshot.entries),
        "",
        "## Training config",
        "",
        "```json",
        json.dumps(config, indent=2, sort_keys=True),
        "```",
        "",
    ]
    return "\n".join(lines)


def export_model(
    ckpt_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    format: str = "auto",
    snapshot: str | None = None,
    db: str | None = None,
) -> dict[str, Any]:
    """Write the encoder (:func:`~pretrain.checkpoint.write_encoder`), MODEL_CARD.md and
    ATTRIBUTION.md beside it; return what was written (``card`` and ``attribution`` added)."""
    out = Path(out_path)
    check_export(out, format)
    ckpt = load_checkpoint(ckpt_path)
    data = _training_snapshot(ckpt, snapshot, db)
    attribution = (data.root / ATTRIBUTION).read_bytes()
    _check_free(out.parent, out, attribution)  # before anything is written
    written = write_encoder(ckpt, out, format=format, source=str(ckpt_path))
    card = model_card(ckpt, data, written, _sha256(out))
    atomic_write(out.parent / CARD, lambda fh: fh.write(card.encode("utf-8")))
    atomic_write(out.parent / ATTRIBUTION, lambda fh: fh.write(attribution))
    return {**written, "card": str(out.parent / CARD), "attribution": str(out.parent / ATTRIBUTION)}
