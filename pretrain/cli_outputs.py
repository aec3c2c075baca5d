"""``pretrain export``, ``dataset`` and ``preview``: weights, rendered datasets and pictures out of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from corpus.cliutils import DbOption, JsonOption, emit_json, warn


def export_command(
    checkpoint: Annotated[Path, typer.Argument(help="A ckpt.pt from pretrain train.")],
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="The weights file (.pt) to write; MODEL_CARD.md and ATTRIBUTION.md go beside it."
        ),
    ],
    fmt: Annotated[
        str, typer.Option("--format", help="auto, torchvision (ResNets: fc freshly initialised) or plain.")
    ] = "auto",
    snapshot: Annotated[
        str | None,
        typer.Option(
            "--snapshot",
            help="The snapshot it was trained on (folder or name), for the model card "
            "(default: the one the checkpoint names).",
        ),
    ] = None,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Write the encoder for use elsewhere (torchvision's resnet keys for ResNets), with a model
    card (snapshot name and manifest hash, licence counts, training config) and the snapshot's
    ATTRIBUTION.md beside it. Export each model into a folder of its own.

    Example: pretrain export runs/a/ckpt.pt --out models/resnet18-shaders/resnet18.pt
    """
    from pretrain.export import export_model

    written = export_model(checkpoint, out, format=fmt, snapshot=snapshot, db=db)
    if json_out:
        emit_json(written)
        return
    typer.echo(f"wrote {written['path']} ({written['format']} {written['arch']}, {written['keys']} tensors)")
    typer.echo(f"wrote {written['card']} and {written['attribution']}: keep them with the weights")
    if written.get("note"):
        typer.echo(written["note"])


def dataset_command(
    snapshot: Annotated[str, typer.Argument(help="An exported snapshot folder, or a snapshot name.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (resumable: finished parts are kept).")],
    per_program: Annotated[int, typer.Option(help="Images rendered per program.")] = 100,
    size: Annotated[int, typer.Option(help="Image side in pixels (default 64).")] = 64,
    fmt: Annotated[
        str, typer.Option("--format", help="imagefolder or webdataset (tar shards).")
    ] = "imagefolder",
    workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Render processes, each with a GL context (default: one per core; 0: in this process).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the rendering times.")] = 0,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Render a static dataset from a snapshot, for training elsewhere.

    Example: pretrain dataset demo/snapshot --per-program 50 --size 64 --format webdataset --out data/wds
    """
    from corpus import cliutils
    from pretrain.snapshot import open_snapshot
    from pretrain.static import DatasetJob, build_dataset

    snap = open_snapshot(snapshot, db=db)
    job = DatasetJob(str(snap.root), str(out), per_program=per_program, size=size, fmt=fmt, seed=seed)
    units = len(snap) if fmt == "imagefolder" else -(-len(snap) * per_program // job.shard_size)
    what = "programs" if fmt == "imagefolder" else "shards"
    with cliutils.progress(f"rendering {what}", units) as advance:
        summary = build_dataset(job, workers=workers, progress=lambda result: advance(1))
    if json_out:
        emit_json(summary)
        return
    typer.echo(
        f"{summary['images']} images from {summary['programs']} programs in {out} ({fmt}); "
        f"{summary['images_this_run']} rendered now, {summary['skipped_units']} parts were already done"
    )
    for program, why in list(summary["failed"].items())[:10]:
        warn(f"skipped {program}: {why}")


def preview_command(
    snapshot: Annotated[str, typer.Argument(help="An exported snapshot folder, or a snapshot name.")],
    out: Annotated[Path, typer.Option("--out", help="The PNG to write.")] = Path("preview.png"),
    size: Annotated[int, typer.Option(help="Image side in pixels (default 64).")] = 64,
    n: Annotated[int, typer.Option(help="Images per row.")] = 16,
    mixup_k: Annotated[int, typer.Option(help="K for the MixUp row (0: no MixUp row).")] = 6,
    seed: Annotated[int, typer.Option(help="Seed of the stream.")] = 0,
    augment: Annotated[
        str,
        typer.Option(
            help="The views' preset: auto (gray: pretrain train's default for its contrastive "
            "methods; supervised runs use light), simclr, light, gray or none."
        ),
    ] = "auto",
    db: DbOption = None,
) -> None:
    """A grid of what the loader produces: rendered images, their augmented views, MixUp images.

    The credits of the programs shown go beside it (preview.png -> preview.credits.md).

    Example: pretrain preview demo/snapshot --out preview.png --mixup-k 6
    """
    from corpus.attribution import credits_path
    from pretrain.preview import preview

    path = preview(snapshot, out, size=size, n=n, mixup_k=mixup_k, seed=seed, db=db, augment=augment)
    typer.echo(f"wrote {path} and its credits {credits_path(path)}")
