"""``pretrain``: train encoders on images rendered live from a snapshot, probe them, export them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from corpus.cliutils import DbOption, JsonOption, emit_json, entry_point, new_app, stderr, warn
from corpus.errors import NotFoundError, UsageProblem
from pretrain.config import TrainConfig as _D  # defaults for --help (no torch import)
from pretrain.protocol import ProbeProtocol as _P

app = new_app(
    "pretrain",
    "Pretrain vision encoders on shader programs rendered on the fly from a snapshot, and probe them.",
)


def _bar(total: int, label: str):
    """A rich progress bar on a terminal, else None."""
    if not sys.stderr.isatty():
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
        console=stderr,
        transient=True,
    )
    bar.start()
    bar.add_task("", total=total)
    return bar


@app.command("train")
def train_command(
    snapshot: Annotated[
        str | None, typer.Option("--snapshot", help="An exported snapshot folder, or a snapshot name.")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="A TOML file of TrainConfig keys.")] = None,
    method: Annotated[
        str | None, typer.Option(help=f"supervised, supcon, simclr or mocov2 (default {_D.method}).")
    ] = None,
    arch: Annotated[
        str | None, typer.Option(help=f"resnet18, resnet50 or alexnet_small (default {_D.arch}).")
    ] = None,
    size: Annotated[int | None, typer.Option(help=f"Image side in pixels (default {_D.size}).")] = None,
    steps: Annotated[int | None, typer.Option(help=f"Optimizer steps (default {_D.steps}).")] = None,
    batch_size: Annotated[
        int | None, typer.Option(help=f"Images per step and process (default {_D.batch_size}).")
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(
            help="Peak learning rate, > 0 "
            "(default: 0.1 x batch size / 256 x processes for sgd, 1e-3 for adamw)."
        ),
    ] = None,
    optimizer: Annotated[str | None, typer.Option(help=f"sgd or adamw (default {_D.optimizer}).")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help=f"Loader processes, each with its own GL context (default {_D.workers}; 0: in this process)."
        ),
    ] = None,
    checkpoint_every: Annotated[
        int | None,
        typer.Option(help=f"Write ckpt.pt every N steps and at the end (default {_D.checkpoint_every})."),
    ] = None,
    mixup_k: Annotated[
        int | None,
        typer.Option(help="Blend K programs per image with Dirichlet weights (paper: 6) (default 0, none)."),
    ] = None,
    mixup_alpha: Annotated[
        float | None, typer.Option(help=f"Dirichlet concentration for MixUp (default {_D.mixup_alpha}).")
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(help=f"Torch device: auto (a GPU if any), cpu, cuda or cuda:N (default {_D.device})."),
    ] = None,
    programs: Annotated[
        int | None, typer.Option(help="Sample only N programs of the snapshot (a seeded choice); 0: all.")
    ] = None,
    program_list: Annotated[
        str | None,
        typer.Option(
            help="A file of program keys (source:id, one a line) of the snapshot: sample only those "
            "(with --programs N, N of them). For studies of a licence class or a hand-picked set."
        ),
    ] = None,
    samples_per_program: Annotated[
        int | None,
        typer.Option(
            help="Consecutive samples that share a program, each at its own time: a batch of B compiles "
            "B/N programs (default 0: 1 where a worker's cache holds every program, else 8)."
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help=f"Seed of everything: data, augmentations, init (default {_D.seed}).")
    ] = None,
    out: Annotated[
        str | None, typer.Option(help=f"Run folder: checkpoint, metrics, loss plot (default {_D.out}).")
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue the run in --out where its checkpoint stopped.")
    ] = False,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Train an encoder on images rendered live from a snapshot.

    Each loader worker owns a headless GL context and renders random (program, time) samples;
    the label is the program's index in the snapshot. A checkpoint (ckpt.pt) is written every
    checkpoint_every steps, at the end, and on Ctrl-C (then exit 130); --resume continues bit for
    bit from the run's own config.json (options given with it may change only --steps, --workers
    and where it runs).
    Run on several processes or machines with torchrun (DistributedDataParallel).

    Example: pretrain train --snapshot demo/snapshot --method supcon --size 64 --steps 2000 --out runs/a
    """
    from pretrain.config import TrainConfig, run_config
    from pretrain.stopping import TrainingInterrupted
    from pretrain.train import train

    base = None
    if resume:  # a resumed run starts from its own settings: only the options given here change them
        folder = Path(out or _D.out)
        base = run_config(folder)
        if base is None:
            raise NotFoundError(
                f"nothing to resume: {folder} holds no run (no config.json)"
                + ("" if out else "; no --out was given, and that is the default run folder"),
                hint="pass --out with the folder of the run to continue, or drop --resume to start one",
            )
    cfg = TrainConfig.load(
        config,
        base=base,
        base_source=str(Path(out or _D.out) / "config.json"),
        snapshot=snapshot,
        method=method,
        arch=arch,
        size=size,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        optimizer=optimizer,
        workers=workers,
        checkpoint_every=checkpoint_every,
        mixup_k=mixup_k,
        mixup_alpha=mixup_alpha,
        device=device,
        programs=programs,
        program_list=program_list,
        samples_per_program=samples_per_program,
        seed=seed,
        out=out,
        db=db,
    )
    bar = _bar(cfg.steps, "training")

    def progress(row: dict, total: int) -> None:
        line = f"loss {row['loss']:.4f}  {row['images_per_s']:.0f} img/s"
        if bar is not None:
            bar.update(bar.task_ids[0], completed=row["step"], description=line)
        elif not json_out:  # no terminal (a job's log): a line per logged step instead of a bar
            typer.echo(f"step {row['step']}/{total}  {line}", err=True)

    stopped = None
    try:
        summary = train(cfg, resume=resume, progress=progress)
    except TrainingInterrupted as exc:  # Ctrl-C: a checkpoint was saved first
        stopped = exc
    finally:
        if bar is not None:
            bar.stop()
    if stopped is not None:
        warn(stopped.message)
        warn(stopped.hint)
        raise typer.Exit(stopped.exit_code)
    if json_out:
        emit_json(summary)
        return
    typer.echo(
        f"trained {summary['steps']} steps ({summary['images_seen']} images"
        + (f"; {summary['steps_this_run']} steps in this run" if summary["resumed_from"] else "")
        + f", {summary['images_per_s']} img/s) "
        f"in {summary['seconds']} s; final loss {summary['final_loss']}; run folder {summary['out']}"
    )
    if summary["skipped_programs"]:
        warn(f"{summary['skipped_programs']} samples skipped a program that did not render here")
    typer.echo(f"next: pretrain probe {summary['out']}/ckpt.pt --dataset fashion-mnist")


def _int_list(text: str | None, option: str) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UsageProblem(
            f"{option} takes whole numbers separated by commas, got {text!r}", hint=f"e.g. {option} 1,10,100"
        ) from None


@app.command("probe")
def probe_command(
    checkpoint: Annotated[
        Path | None,
        typer.Argument(
            help="A ckpt.pt from pretrain train (with --random-init: the run whose baseline to probe)."
        ),
    ] = None,
    dataset: Annotated[
        str, typer.Option(help="fashion-mnist (Debian's dataset-fashion-mnist) or an ImageFolder directory.")
    ] = "fashion-mnist",
    baseline: Annotated[
        str,
        typer.Option(
            help="random-init: probe the same architecture at random init in the same call, and the gain; "
            "none: only the checkpoint."
        ),
    ] = "random-init",
    random_init: Annotated[
        bool,
        typer.Option(
            "--random-init",
            help="Probe only an untrained encoder: the baseline. With a CKPT, of its architecture.",
        ),
    ] = False,
    arch: Annotated[
        str | None,
        typer.Option(help="With --random-init and no CKPT: the architecture (default resnet18)."),
    ] = None,
    layer: Annotated[
        list[str] | None,
        typer.Option(
            help="The stage the probes read, pooled (repeat for several): auto (the protocol's: "
            "layer2 of a ResNet, else the last stage), last, layer1-layer4 for ResNets, "
            "conv1-conv5 for alexnet_small."
        ),
    ] = None,
    size: Annotated[int | None, typer.Option(help=f"Image side (protocol: {_P.size}).")] = None,
    few_shot: Annotated[
        str | None,
        typer.Option(help="Images a class for the few-shot probes, comma-separated (protocol: 1,10,100)."),
    ] = None,
    seeds: Annotated[int | None, typer.Option(help=f"Probe seeds (protocol: {_P.seeds}).")] = None,
    max_train: Annotated[
        int | None,
        typer.Option(help=f"Training pool: at most this many images (0: all; protocol: {_P.max_train})."),
    ] = None,
    max_test: Annotated[
        int | None,
        typer.Option(
            help=f"Test images: at most this many (0: all; protocol: {_P.max_test}, all of Fashion-MNIST)."
        ),
    ] = None,
    knn_k: Annotated[
        int | None, typer.Option(help=f"Neighbours of the k-NN probe (protocol: {_P.knn_k}).")
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Probe a checkpoint with the evaluation protocol, beside the same network at random init.

    Frozen features of real images (Fashion-MNIST by default, at 64 px) are read by a linear probe
    on 10,000 training images, few-shot linear probes (1, 10, 100 images a class) and a k-NN probe
    (cosine, k=20), over 5 probe seeds: mean ± std a cell, and the checkpoint's gain over random
    init. The README's pretraining section describes the protocol; --json records its constants.

    Example: pretrain probe runs/a/ckpt.pt --dataset fashion-mnist --json
    """
    from corpus import cliutils
    from pretrain.probe import probe_checkpoint
    from pretrain.protocol import format_report

    changes: dict = {}
    for name, value in (("size", size), ("seeds", seeds), ("knn_k", knn_k)):
        if value is not None:
            changes[name] = value
    for name, value in (("max_train", max_train), ("max_test", max_test)):
        if value is not None:
            changes[name] = value or None
    if layer:
        changes["layers"] = tuple(layer)
    shots = _int_list(few_shot, "--few-shot")
    if shots is not None:
        changes["few_shot"] = shots
    # progress through corpus's one helper: a bar on a terminal, a line every few seconds when piped
    report = probe_checkpoint(
        checkpoint,
        dataset,
        baseline=baseline,
        arch=arch or (None if checkpoint is not None else "resnet18"),
        random_init=random_init,
        progress=cliutils.progress,
        **changes,
    )
    if json_out:
        emit_json(report)
        return
    typer.echo(format_report(report))


@app.command("export")
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


@app.command("dataset")
def dataset_command(
    snapshot: Annotated[str, typer.Argument(help="An exported snapshot folder, or a snapshot name.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (resumable: finished parts are kept).")],
    per_program: Annotated[int, typer.Option(help="Images rendered per program.")] = 100,
    size: Annotated[int, typer.Option(help=f"Image side in pixels (default {_D.size}).")] = 64,
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


@app.command("preview")
def preview_command(
    snapshot: Annotated[str, typer.Argument(help="An exported snapshot folder, or a snapshot name.")],
    out: Annotated[Path, typer.Option("--out", help="The PNG to write.")] = Path("preview.png"),
    size: Annotated[int, typer.Option(help=f"Image side in pixels (default {_D.size}).")] = 64,
    n: Annotated[int, typer.Option(help="Images per row.")] = 16,
    mixup_k: Annotated[int, typer.Option(help="K for the MixUp row (0: no MixUp row).")] = 6,
    seed: Annotated[int, typer.Option(help="Seed of the stream.")] = 0,
    db: DbOption = None,
) -> None:
    """A grid of what the loader produces: rendered images, their augmented views, MixUp images.

    Example: pretrain preview demo/snapshot --out preview.png --mixup-k 6
    """
    from pretrain.preview import preview

    path = preview(snapshot, out, size=size, n=n, mixup_k=mixup_k, seed=seed, db=db)
    typer.echo(f"wrote {path}")


main = entry_point(app, "pretrain")

if __name__ == "__main__":
    sys.exit(main())
