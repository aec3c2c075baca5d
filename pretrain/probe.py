"""Probes: how well real images are told apart in a frozen encoder's features.

:func:`probe_checkpoint` runs the evaluation protocol (:mod:`pretrain.protocol` fixes and documents
it) on a checkpoint and, in the same call, on the same architecture at random initialisation, the
baseline the paper compares against. :func:`probe_encoders` does the same for encoders already in
memory. Features are extracted once per model and split (eval mode, no gradients, batched) and
every probe and probe seed reuses them: extraction dominates the cost, measured on this project's 2
shared CPU cores at 64 px at about 130 images/s for ResNet-18 and 340 for ``alexnet_small``, so the
protocol's 20,000 images take about 2.5 minutes a ResNet-18 (a minute for ``alexnet_small``) and
the fits one to two minutes more; pass a smaller ``max_train``/``max_test`` for quicker, rougher
looks.

:func:`probe` is the single linear probe the protocol is built from (one seed, one subset), kept for
scripts that want just that number.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import torch
from torch import nn

from corpus.errors import UsageProblem
from pretrain.augment import normalize
from pretrain.checkpoint import encoder_from_checkpoint, load_checkpoint
from pretrain.evaldata import EvalDataset, EvalSplit, load_eval_dataset
from pretrain.evaluation import evaluate_features, gains
from pretrain.layers import PooledStages
from pretrain.linear import accuracy, can_select, fit_probe, select_indices, standardise
from pretrain.models import build_backbone
from pretrain.protocol import WEIGHT_DECAYS, ProbeProtocol

__all__ = [
    "BASELINES",
    "DEFAULT_MAX_TEST",
    "DEFAULT_MAX_TRAIN",
    "extract_features",
    "probe",
    "probe_checkpoint",
    "probe_encoders",
]

#: ``progress(description, total)``: a context manager yielding ``advance(n)``.
Progress = Callable[[str, int | None], AbstractContextManager[Callable[[int], None]]]


@contextlib.contextmanager
def _no_progress(description: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    yield lambda n: None


DEFAULT_MAX_TRAIN = 10_000
DEFAULT_MAX_TEST = 2_000
BASELINES = ("random-init", "none")
CHECKPOINT, RANDOM_INIT = "checkpoint", "random-init"


@torch.no_grad()
def extract_features(
    stages: PooledStages,
    split: EvalSplit,
    indices: torch.Tensor | Sequence[int],
    size: int,
    *,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    advance: Callable[[int], None] | None = None,
) -> dict[str, torch.Tensor]:
    """``{stage: (n, C) features}`` of the chosen samples, every stage from one forward pass of the
    encoder in eval mode, the images made one batch at a time; ``advance(n)`` is called after each
    batch of ``n``."""
    encoder = stages.encoder
    was_training = encoder.training
    encoder.eval()
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in stages.layers}
    try:
        idx = [int(i) for i in indices]
        for start in range(0, len(idx), batch_size):
            x = normalize(split.images(idx[start : start + batch_size], size)).to(device)
            for name, features in stages(x).items():
                parts[name].append(features.cpu())
            if advance is not None:
                advance(x.shape[0])
    finally:
        encoder.train(was_training)
    return {name: torch.cat(xs) if xs else torch.empty(0, 0) for name, xs in parts.items()}


def probe(
    encoder: nn.Module,
    dim: int,
    dataset: str | os.PathLike[str] | EvalDataset,
    *,
    size: int,
    few_shot: int | None = None,
    seed: int = 0,
    epochs: int = 100,
    max_train: int | None = DEFAULT_MAX_TRAIN,
    max_test: int | None = DEFAULT_MAX_TEST,
    weight_decay: float | None = None,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """One linear probe of ``encoder`` (features of size ``dim``) on ``dataset``; return the scores.

    ``dataset`` is ``"fashion-mnist"``, an ImageFolder path or a loaded :class:`EvalDataset`.
    ``epochs`` bounds the L-BFGS iterations of each fit. ``max_train``/``max_test`` cap the
    splits (``None``: all; ignored for training when ``few_shot`` is set); the training subset
    depends on ``seed``, the test subset does not. Returns a dict with ``accuracy`` (top-1 on the
    test split, 0-1), ``train_accuracy``, ``n_train``, ``n_test``, ``num_classes``,
    ``weight_decay``, timings in seconds, and the options used.

    ``progress`` reports the two long phases, feature extraction (in images) and fitting (in
    fits): ``progress(description, total)`` is a context manager yielding ``advance(n)``, as
    :func:`corpus.cliutils.progress` is (a bar on a terminal, log lines when piped).
    """
    if size < 8:
        raise UsageProblem(
            f"probe image size {size} is too small", hint="use the encoder's training size, e.g. 64"
        )
    started = time.perf_counter()
    data = dataset if isinstance(dataset, EvalDataset) else load_eval_dataset(dataset)
    dev = torch.device(device) if device is not None else next(encoder.parameters()).device
    train_idx = select_indices(data.train.labels, few_shot=few_shot, max_n=max_train, seed=seed)
    test_idx = select_indices(data.test.labels, max_n=max_test, seed=0)

    report = progress or _no_progress
    t0 = time.perf_counter()
    stages = PooledStages(encoder)
    with report("probe: features", len(train_idx) + len(test_idx)) as advance:
        options = {"batch_size": batch_size, "device": dev, "advance": advance}
        [train_x] = extract_features(stages, data.train, train_idx, size, **options).values()
        [test_x] = extract_features(stages, data.test, test_idx, size, **options).values()
    seconds_features = time.perf_counter() - t0
    if train_x.shape[1] != dim:
        raise UsageProblem(
            f"the encoder gives {train_x.shape[1]} features, not {dim}", hint="pass its real dim"
        )
    train_y, test_y = data.train.labels[train_idx], data.test.labels[test_idx]
    train_x, test_x = standardise(train_x, test_x)

    t0 = time.perf_counter()
    fits = 1 + (len(WEIGHT_DECAYS) if weight_decay is None and can_select(train_y, data.num_classes) else 0)
    with report("probe: fitting", fits) as advance:
        layer, weight_decay = fit_probe(
            train_x, train_y, data.num_classes, weight_decay=weight_decay, max_iter=epochs, advance=advance
        )
    seconds_fit = time.perf_counter() - t0
    return {
        "dataset": data.name,
        "accuracy": round(accuracy(layer, test_x, test_y), 6),  # float32 digits past these are noise
        "train_accuracy": accuracy(layer, train_x, train_y),
        "n_train": int(train_y.shape[0]),
        "n_test": int(test_y.shape[0]),
        "num_classes": data.num_classes,
        "dim": dim,
        "size": size,
        "few_shot": few_shot,
        "seed": seed,
        "weight_decay": weight_decay,
        "seconds_features": round(seconds_features, 3),
        "seconds_fit": round(seconds_fit, 3),
        "seconds": round(time.perf_counter() - started, 3),
    }


def probe_encoders(
    encoders: Mapping[str, nn.Module],
    dataset: str | os.PathLike[str] | EvalDataset,
    protocol: ProbeProtocol | None = None,
    *,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The protocol on each of ``encoders`` (by name), on the same images and seeds.

    Returns ``protocol`` (its record), ``dataset``, ``num_classes``, ``n_train``, ``n_test``,
    ``models`` (``{name: {layers: {stage: dim}, seconds_features, seconds_fit}}``), ``results``
    (``{name: {stage: {probe: summary}}}``, see :func:`pretrain.protocol.evaluate_features`) and
    ``seconds``. ``progress`` reports each model's feature extraction (in images) and probes (in
    probe runs), as :func:`probe` does.
    """
    protocol = protocol or ProbeProtocol()
    started = time.perf_counter()
    data = dataset if isinstance(dataset, EvalDataset) else load_eval_dataset(dataset)
    train_idx = select_indices(data.train.labels, max_n=protocol.max_train, seed=protocol.subset_seed)
    test_idx = select_indices(data.test.labels, max_n=protocol.max_test, seed=protocol.subset_seed)
    train_y, test_y = data.train.labels[train_idx], data.test.labels[test_idx]
    report = progress or _no_progress
    runs = protocol.seeds * len(protocol.few_shot) + 2  # few-shot runs a seed, linear and k-NN once
    models: dict[str, dict[str, Any]] = {}
    results: dict[str, dict[str, Any]] = {}
    for name, encoder in encoders.items():
        stages = PooledStages(encoder, protocol.layers)
        dev = torch.device(device) if device is not None else next(encoder.parameters()).device
        t0 = time.perf_counter()
        with report(f"probe: features of {name}", len(train_idx) + len(test_idx)) as advance:
            options = {"batch_size": batch_size, "device": dev, "advance": advance}
            train_x = extract_features(stages, data.train, train_idx, protocol.size, **options)
            test_x = extract_features(stages, data.test, test_idx, protocol.size, **options)
        seconds_features = time.perf_counter() - t0
        t0 = time.perf_counter()
        results[name] = {}
        with report(f"probe: fitting on {name}", runs * len(stages.layers)) as advance:
            for stage in stages.layers:
                results[name][stage] = evaluate_features(
                    train_x[stage], train_y, test_x[stage], test_y, data.num_classes, protocol, advance
                )
        models[name] = {
            "layers": {stage: int(x.shape[1]) for stage, x in train_x.items()},
            "seconds_features": round(seconds_features, 3),
            "seconds_fit": round(time.perf_counter() - t0, 3),
        }
    return {
        "protocol": protocol.record(),
        "dataset": data.name,
        "num_classes": data.num_classes,
        "n_train": len(train_idx),
        "n_test": len(test_idx),
        "models": models,
        "results": results,
        "seconds": round(time.perf_counter() - started, 3),
    }


def probe_checkpoint(
    checkpoint: str | os.PathLike[str] | None,
    dataset: str | os.PathLike[str] | EvalDataset = "fashion-mnist",
    *,
    baseline: str = RANDOM_INIT,
    arch: str | None = None,
    random_init: bool = False,
    protocol: ProbeProtocol | None = None,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    progress: Progress | None = None,
    **changes: Any,
) -> dict[str, Any]:
    """The protocol on a checkpoint's encoder and, with ``baseline="random-init"`` (the default),
    on the same architecture at random init, in one call; ``baseline="none"`` probes only the
    checkpoint. With ``random_init`` only the baseline is probed: the checkpoint's architecture if
    one is given, else ``arch``.

    ``protocol`` (default: :class:`ProbeProtocol`'s defaults), with ``changes`` to its fields
    (``size=32``, ``seeds=3``, ``layers=("layer3", "last")``, ``max_train=2000`` …). Returns
    :func:`probe_encoders`' report; each of ``models`` also holds ``label`` (for a table),
    ``checkpoint``, ``arch``, ``random_init`` and ``step`` (0 at random init), and with both
    models ``gain`` holds ``{stage: {probe: {mean, std, differences}}}``, the checkpoint's
    accuracy minus the baseline's, seed by seed.
    """
    if baseline not in BASELINES:
        raise UsageProblem(f"unknown baseline {baseline!r}", hint=f"choose one of: {', '.join(BASELINES)}")
    protocol = dataclasses.replace(protocol or ProbeProtocol(), **changes)
    ckpt = load_checkpoint(checkpoint) if checkpoint is not None else None
    encoders: dict[str, nn.Module] = {}
    meta: dict[str, dict[str, Any]] = {}
    if not random_init:
        if ckpt is None:
            raise UsageProblem("nothing to probe", hint="pass a checkpoint, or --random-init with --arch")
        encoder, _, _ = encoder_from_checkpoint(ckpt, source=str(checkpoint))
        encoders[CHECKPOINT] = encoder
        step = int(ckpt["step"])
        meta[CHECKPOINT] = {"label": f"{checkpoint} (step {step})", "arch": ckpt["arch"], "step": step}
    if random_init or baseline == RANDOM_INIT:
        if ckpt is not None:
            if arch is not None and arch != ckpt["arch"]:
                raise UsageProblem(
                    f"{checkpoint} is a {ckpt['arch']}, not a {arch}: its baseline is the same architecture",
                    hint="leave --arch out when probing a checkpoint",
                )
            arch = ckpt["arch"]
        if arch is None:
            raise UsageProblem(
                "a random-init probe needs an architecture", hint="pass --arch or a checkpoint"
            )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(protocol.init_seed)
            encoders[RANDOM_INIT], _ = build_backbone(arch)
        meta[RANDOM_INIT] = {"label": f"random-init {arch}", "arch": arch, "step": 0}
    del ckpt  # the optimizer state can be large; only the encoders are needed from here on
    report = probe_encoders(
        encoders, dataset, protocol, batch_size=batch_size, device=device, progress=progress
    )
    for name, info in meta.items():
        report["models"][name] = {
            **info,
            "checkpoint": str(checkpoint) if checkpoint is not None else None,
            "random_init": name == RANDOM_INIT,
            **report["models"][name],
        }
    if len(encoders) == 2:
        ours, base = report["results"][CHECKPOINT], report["results"][RANDOM_INIT]
        report["gain"] = {stage: gains(ours[stage], base[stage]) for stage in ours}
    return report
