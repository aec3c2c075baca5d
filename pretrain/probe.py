"""Linear probe: how linearly separable real images are in a frozen encoder's features.

The measure the paper reports (ImageNet linear top-1), at a size this machine can afford:
features are extracted once (eval mode, no gradients, batched), standardised with the training
split's mean and std, and a multinomial logistic regression is fitted full-batch with L-BFGS from
zeros, which is deterministic. Its L2 weight decay is chosen on a fixed 20 % hold-out of the
training features from :data:`WEIGHT_DECAYS` (or given), then the classifier is refitted on all of them.

Defaults cap the splits at :data:`DEFAULT_MAX_TRAIN` training and :data:`DEFAULT_MAX_TEST` test
images (pass ``None`` for a full split; Fashion-MNIST has 60,000 and 10,000). Feature extraction
dominates: measured on this project's 2 shared CPU cores at 64 px, about 110 images/s for
``alexnet_small`` and 60 for ResNet-18, so the default 12,000 images take 2-3.5 minutes (a quarter
of that at 32 px); pass a smaller ``max_train`` for quicker looks. The training subset depends on
``seed``; the test subset does not, so probes with different seeds are scored on the same images.
``few_shot=N`` trains on N images per class instead.

The baseline the paper compares against is the same architecture at random initialisation:
:func:`probe_checkpoint` with ``random_init=True``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from corpus.errors import UsageProblem
from pretrain.augment import normalize
from pretrain.checkpoint import encoder_from_checkpoint, load_checkpoint
from pretrain.evaldata import EvalDataset, EvalSplit, load_eval_dataset
from pretrain.models import build_backbone

__all__ = [
    "DEFAULT_MAX_TEST",
    "DEFAULT_MAX_TRAIN",
    "extract_features",
    "fit_linear",
    "probe",
    "probe_checkpoint",
    "select_indices",
]

#: ``progress(description, total)``: a context manager yielding ``advance(n)``.
Progress = Callable[[str, int | None], AbstractContextManager[Callable[[int], None]]]


@contextlib.contextmanager
def _no_progress(description: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    yield lambda n: None


DEFAULT_MAX_TRAIN = 10_000
DEFAULT_MAX_TEST = 2_000
DEFAULT_SIZE = 64
WEIGHT_DECAYS = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
# Too few examples per class to hold some out: a fixed, fairly strong decay instead.
FEW_SHOT_WEIGHT_DECAY = 1e-2
_MIN_PER_CLASS_TO_SELECT = 5


def select_indices(
    labels: torch.Tensor, *, few_shot: int | None = None, max_n: int | None = None, seed: int = 0
) -> torch.Tensor:
    """Which samples to use, deterministically from ``seed``, in ascending order.

    ``few_shot``: N per class (all of a class that has fewer). ``max_n``: at most that many, drawn
    uniformly (so class shares follow the split's). Neither: everything.
    """
    n = labels.shape[0]
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=gen)
    if few_shot is not None:
        if few_shot < 1:
            raise UsageProblem(f"few-shot needs at least 1 image per class, got {few_shot}")
        shuffled = labels[order]
        picked = [order[shuffled == c][:few_shot] for c in torch.unique(labels)]
        chosen = torch.cat(picked)
    elif max_n is not None and max_n < n:
        chosen = order[:max_n]
    else:
        chosen = torch.arange(n)
    return torch.sort(chosen).values


@torch.no_grad()
def extract_features(
    encoder: nn.Module,
    split: EvalSplit,
    indices: torch.Tensor | Sequence[int],
    size: int,
    *,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    advance: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Encoder features ``(n, D)`` of the chosen samples, converted to images one batch at a time;
    ``advance(n)`` is called after each batch of ``n``."""
    was_training = encoder.training
    encoder.eval()
    out = []
    try:
        idx = [int(i) for i in indices]
        for start in range(0, len(idx), batch_size):
            x = normalize(split.images(idx[start : start + batch_size], size)).to(device)
            out.append(encoder(x).float().cpu())
            if advance is not None:
                advance(x.shape[0])
    finally:
        encoder.train(was_training)
    return torch.cat(out) if out else torch.empty(0, 0)


def fit_linear(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    *,
    weight_decay: float,
    max_iter: int = 100,
) -> nn.Linear:
    """Multinomial logistic regression by full-batch L-BFGS from zeros (deterministic)."""
    layer = nn.Linear(features.shape[1], num_classes)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    opt = torch.optim.LBFGS(
        layer.parameters(),
        lr=1.0,
        max_iter=max_iter,
        history_size=20,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-6,
        tolerance_change=1e-9,
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(layer(features), labels) + 0.5 * weight_decay * layer.weight.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return layer


def _accuracy(layer: nn.Linear, features: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return (layer(features).argmax(dim=1) == labels).float().mean().item()


def _choose_weight_decay(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    max_iter: int,
    advance: Callable[[int], None],
) -> float:
    """The decay from :data:`WEIGHT_DECAYS` with the best accuracy on a fixed 20 % hold-out."""
    gen = torch.Generator().manual_seed(0)
    held = torch.zeros(labels.shape[0], dtype=torch.bool)
    for c in torch.unique(labels):
        members = torch.nonzero(labels == c).flatten()
        members = members[torch.randperm(members.numel(), generator=gen)]
        held[members[: max(1, members.numel() // 5)]] = True
    best, best_acc = WEIGHT_DECAYS[-1], -1.0
    # From strongest to weakest, keeping the first best: ties go to the simpler model.
    for wd in reversed(WEIGHT_DECAYS):
        layer = fit_linear(features[~held], labels[~held], num_classes, weight_decay=wd, max_iter=max_iter)
        acc = _accuracy(layer, features[held], labels[held])
        advance(1)
        if acc > best_acc:
            best, best_acc = wd, acc
    return best


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
    """Linear-probe ``encoder`` (features of size ``dim``) on ``dataset``; return the scores.

    ``dataset`` is ``"fashion-mnist"``, an ImageFolder path or a loaded :class:`EvalDataset`.
    ``epochs`` bounds the L-BFGS iterations of each fit. ``max_train``/``max_test`` cap the
    splits (``None``: all; ignored for training when ``few_shot`` is set). Returns a dict with
    ``accuracy`` (top-1 on the test split, 0-1), ``train_accuracy``, ``n_train``, ``n_test``,
    ``num_classes``, ``weight_decay``, timings in seconds, and the options used.

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
    with report("probe: features", len(train_idx) + len(test_idx)) as advance:
        options = {"batch_size": batch_size, "device": dev, "advance": advance}
        train_x = extract_features(encoder, data.train, train_idx, size, **options)
        test_x = extract_features(encoder, data.test, test_idx, size, **options)
    seconds_features = time.perf_counter() - t0
    if train_x.shape[1] != dim:
        raise UsageProblem(
            f"the encoder gives {train_x.shape[1]} features, not {dim}", hint="pass its real dim"
        )
    train_y, test_y = data.train.labels[train_idx], data.test.labels[test_idx]

    # Standardise with the training features only; constant features (dead units) stay at 0.
    mean, std = train_x.mean(dim=0), train_x.std(dim=0, correction=0)
    std = torch.where(std > 1e-6, std, torch.ones_like(std))
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std

    t0 = time.perf_counter()
    select = False
    if weight_decay is None:
        per_class = torch.bincount(train_y, minlength=data.num_classes)
        select = int(per_class[per_class > 0].min()) >= _MIN_PER_CLASS_TO_SELECT
        weight_decay = FEW_SHOT_WEIGHT_DECAY
    with report("probe: fitting", 1 + (len(WEIGHT_DECAYS) if select else 0)) as advance:
        if select:
            weight_decay = _choose_weight_decay(train_x, train_y, data.num_classes, epochs, advance)
        layer = fit_linear(train_x, train_y, data.num_classes, weight_decay=weight_decay, max_iter=epochs)
        advance(1)
    seconds_fit = time.perf_counter() - t0
    return {
        "dataset": data.name,
        "accuracy": round(_accuracy(layer, test_x, test_y), 6),  # float32 digits past these are noise
        "train_accuracy": _accuracy(layer, train_x, train_y),
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


def probe_checkpoint(
    checkpoint: str | os.PathLike[str] | None,
    dataset: str | os.PathLike[str] | EvalDataset,
    *,
    arch: str | None = None,
    random_init: bool = False,
    size: int | None = None,
    **options: Any,
) -> dict[str, Any]:
    """:func:`probe` a checkpoint's encoder, or the same architecture at random init (the baseline).

    With ``random_init`` the architecture and training size come from the checkpoint when one is
    given, else from ``arch``; the weights are drawn from ``seed`` without disturbing the global
    random state. ``size`` falls back to the checkpoint config's ``size``, then to
    :data:`DEFAULT_SIZE`. Other options go to :func:`probe`. The result adds ``checkpoint``,
    ``arch``, ``random_init`` and ``step`` (the checkpoint's training step; 0 at random init).
    """
    ckpt = load_checkpoint(checkpoint) if checkpoint is not None else None
    config: dict[str, Any] = dict(ckpt["config"]) if ckpt is not None else {}
    if not random_init:
        if ckpt is None:
            raise UsageProblem("nothing to probe", hint="pass a checkpoint, or --random-init with --arch")
        encoder, dim, config = encoder_from_checkpoint(ckpt, source=str(checkpoint))
        arch, step = ckpt["arch"], int(ckpt["step"])
    else:
        arch = arch or (ckpt["arch"] if ckpt is not None else None)
        if arch is None:
            raise UsageProblem(
                "a random-init probe needs an architecture", hint="pass --arch or a checkpoint"
            )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(options.get("seed", 0)))
            encoder, dim = build_backbone(arch)
        step = 0
    del ckpt  # the optimizer state can be large; only the encoder is needed from here on
    size = size or int(config.get("size") or DEFAULT_SIZE)
    result = probe(encoder, dim, dataset, size=size, **options)
    return {
        **result,
        "checkpoint": str(checkpoint) if checkpoint is not None else None,
        "arch": arch,
        "random_init": random_init,
        "step": step,
    }
