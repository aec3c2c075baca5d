"""``pretrain probe``: the evaluation protocol on a checkpoint and on its random-init baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from corpus.cliutils import JsonOption, emit_json
from corpus.errors import UsageProblem
from pretrain.protocol import ProbeProtocol as _P


def _int_list(text: str | None, option: str) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UsageProblem(
            f"{option} takes whole numbers separated by commas, got {text!r}", hint=f"e.g. {option} 1,10,100"
        ) from None


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
