"""``pretrain``: train encoders on images rendered live from a snapshot, probe them, export them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from corpus.cliutils import DbOption, JsonOption, emit_json, entry_point, new_app, stderr, warn
from corpus.errors import NotFoundError
from pretrain.cli_outputs import dataset_command, export_command, preview_command
from pretrain.cli_probe import probe_command
from pretrain.config import TrainConfig as _D  # defaults for --help (no torch import)

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
    optimizer: Annotated[str | None, typer.Option(help=f"adamw or sgd (default {_D.optimizer}).")] = None,
    weight_decay: Annotated[
        float | None, typer.Option(help="Weight decay (default: 0.05 for adamw, 1e-4 for sgd).")
    ] = None,
    augment: Annotated[
        str | None,
        typer.Option(
            help="Augmentation preset: auto (default: gray for contrastive methods, light for "
            "supervised), simclr, gray, light or none."
        ),
    ] = None,
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
    Run on several processes or machines with torchrun (DistributedDataParallel). The defaults are
    the CPU recipe (configs/cpu-quick.toml): SupCon, ResNet-18 at 32 px, 6,000 steps of 64 images,
    AdamW, grey views; 25-35 minutes on 2 CPU cores.

    Example: pretrain train --snapshot demo/snapshot --out runs/a   (on a GPU: --size 64 --steps 20000)
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
        weight_decay=weight_decay,
        augment=augment,
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


app.command("probe")(probe_command)
app.command("export")(export_command)
app.command("dataset")(dataset_command)
app.command("preview")(preview_command)

main = entry_point(app, "pretrain")

if __name__ == "__main__":
    sys.exit(main())
