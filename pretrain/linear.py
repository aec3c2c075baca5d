"""Linear classifiers on frozen features: the fitting half of every probe.

A probe's classifier is a multinomial logistic regression fitted full-batch with L-BFGS from zeros,
which is deterministic: the same features give the same classifier. Features are standardised with
the training features' mean and std first (:func:`standardise`). Its L2 weight decay is chosen on a
20 % hold-out of the training features from :data:`WEIGHT_DECAYS`, then the classifier is refitted
on all of them (:func:`fit_probe`); with fewer than :data:`MIN_PER_CLASS_TO_SELECT` examples in some
class nothing can be held out, and :data:`FEW_SHOT_WEIGHT_DECAY` is used instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from corpus.errors import UsageProblem
from pretrain.protocol import FEW_SHOT_WEIGHT_DECAY, MIN_PER_CLASS_TO_SELECT, WEIGHT_DECAYS

__all__ = [
    "accuracy",
    "can_select",
    "fit_linear",
    "fit_probe",
    "one_thread",
    "select_indices",
    "standardise",
]


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


def standardise(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    """``train`` and ``others`` shifted and scaled by ``train``'s per-feature mean and std.

    Constant features (dead units) get a scale of 1, so they stay constant instead of blowing up.
    """
    mean, std = train.mean(dim=0), train.std(dim=0, correction=0)
    std = torch.where(std > 1e-6, std, torch.ones_like(std))
    return [(x - mean) / std for x in (train, *others)]


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


def accuracy(layer: nn.Module, features: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy (0-1) of ``layer``'s predictions."""
    with torch.no_grad():
        return (layer(features).argmax(dim=1) == labels).float().mean().item()


def _choose_weight_decay(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    *,
    decays: Sequence[float],
    max_iter: int,
    seed: int,
    advance: Callable[[int], None],
) -> float:
    """The decay from ``decays`` with the best accuracy on a 20 % hold-out of each class (drawn
    from ``seed``)."""
    gen = torch.Generator().manual_seed(seed)
    held = torch.zeros(labels.shape[0], dtype=torch.bool)
    for c in torch.unique(labels):
        members = torch.nonzero(labels == c).flatten()
        members = members[torch.randperm(members.numel(), generator=gen)]
        held[members[: max(1, members.numel() // 5)]] = True
    best, best_acc = max(decays), -1.0
    # From strongest to weakest, keeping the first best: ties go to the simpler model.
    for wd in sorted(decays, reverse=True):
        layer = fit_linear(features[~held], labels[~held], num_classes, weight_decay=wd, max_iter=max_iter)
        acc = accuracy(layer, features[held], labels[held])
        advance(1)
        if acc > best_acc:
            best, best_acc = wd, acc
    return best


def can_select(labels: torch.Tensor, num_classes: int) -> bool:
    """Whether every class present has enough examples to hold some out for choosing the decay."""
    per_class = torch.bincount(labels, minlength=num_classes)
    return int(per_class[per_class > 0].min()) >= MIN_PER_CLASS_TO_SELECT


def fit_probe(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    *,
    weight_decay: float | None = None,
    decays: Sequence[float] = WEIGHT_DECAYS,
    few_shot_decay: float = FEW_SHOT_WEIGHT_DECAY,
    max_iter: int = 100,
    seed: int = 0,
    advance: Callable[[int], None] = lambda n: None,
) -> tuple[nn.Linear, float]:
    """A probe's classifier on (standardised) ``features`` and the weight decay it was fitted with.

    ``weight_decay`` None: chosen from ``decays`` on a hold-out drawn from ``seed`` when every class
    has :data:`MIN_PER_CLASS_TO_SELECT` examples, else ``few_shot_decay``. ``advance(1)`` is called
    after each fit (one per candidate decay, then the final one).
    """
    with one_thread():
        if weight_decay is None:
            if can_select(labels, num_classes):
                weight_decay = _choose_weight_decay(
                    features,
                    labels,
                    num_classes,
                    decays=decays,
                    max_iter=max_iter,
                    seed=seed,
                    advance=advance,
                )
            else:
                weight_decay = few_shot_decay
        layer = fit_linear(features, labels, num_classes, weight_decay=weight_decay, max_iter=max_iter)
    advance(1)
    return layer, weight_decay


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Torch on one thread inside (the probes' fits run so): an L-BFGS step is a chain of small
    matrix products, which several threads only slow down (they wait on each other), and on a
    shared machine by an order of magnitude: measured on this project's 2 busy cores, a 10-shot
    probe took 60 s on 2 threads and 2.3 s on one, the 10,000-image probe 126 s and 36 s, to the
    same classifiers."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
