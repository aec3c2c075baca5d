"""The protocol's probes on features already extracted: linear, few-shot linear and k-NN.

:mod:`pretrain.protocol` says what is measured and why; this module measures it on tensors, so the
probes are tested on synthetic features whose answers are known.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from pretrain.linear import accuracy, fit_probe, select_indices, standardise
from pretrain.protocol import KNN, LINEAR, ProbeProtocol

__all__ = ["evaluate_features", "gains", "knn_accuracy"]


def knn_accuracy(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    num_classes: int,
    *,
    k: int = 20,
    temperature: float = 0.07,
    chunk: int = 1024,
) -> float:
    """Weighted k-NN top-1 accuracy (0-1): each test sample's ``k`` most cosine-similar training
    samples vote for their class with weight ``exp(similarity / temperature)``."""
    bank = F.normalize(train_x.float(), dim=1)
    k = min(k, bank.shape[0])
    correct = 0
    for start in range(0, test_x.shape[0], chunk):
        queries = F.normalize(test_x[start : start + chunk].float(), dim=1)
        similarity, nearest = (queries @ bank.T).topk(k, dim=1)
        votes = torch.zeros(queries.shape[0], num_classes)
        votes.scatter_add_(1, train_y[nearest], (similarity / temperature).exp())
        correct += int((votes.argmax(dim=1) == test_y[start : start + chunk]).sum())
    return correct / max(1, test_x.shape[0])


def _summary(accuracies: Sequence[float], n_train: int, n_test: int, **extra: Any) -> dict[str, Any]:
    values = torch.tensor(accuracies, dtype=torch.float64)
    mean = float(values.mean())
    return {
        "mean": round(mean, 6),
        "std": round(float(values.std()) if len(values) > 1 else 0.0, 6),
        "accuracies": [round(a, 6) for a in accuracies],  # float32 digits past these are noise
        "n_train": n_train,
        "n_test": n_test,
        "test_stderr": round(math.sqrt(mean * (1 - mean) / max(1, n_test)), 6),
        **extra,
    }


def evaluate_features(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    num_classes: int,
    protocol: ProbeProtocol,
    advance: Callable[[int], None] = lambda n: None,
) -> dict[str, dict[str, Any]]:
    """Every probe of ``protocol`` on one model's features: ``{probe: summary}``.

    ``train_x`` is the whole training pool, raw (standardised here). A summary holds ``mean``,
    ``std`` (over probe seeds: the few-shot probes run once a seed, the whole-pool linear and k-NN
    probes once, std 0), ``accuracies`` (one a run), ``n_train`` (images the classifier saw),
    ``n_test``, ``test_stderr`` and, for linear probes, the ``weight_decays`` chosen.
    ``advance(1)`` is called after each probe run.
    """
    train_x, test_x = standardise(train_x, test_x)
    fit = {
        "decays": protocol.weight_decays,
        "few_shot_decay": protocol.few_shot_weight_decay,
        "max_iter": protocol.epochs,
    }
    n_test = int(test_y.shape[0])
    results: dict[str, dict[str, Any]] = {}
    subsets: list[tuple[str, int | None]] = [(LINEAR, None), *((f"{n}-shot", n) for n in protocol.few_shot)]
    for name, shots in subsets:
        accuracies, decays, n_train = [], [], 0
        # the whole pool is the same whatever the seed: its probe, like k-NN's, is run once
        for seed in range(protocol.seeds if shots else 1):
            idx = select_indices(train_y, few_shot=shots, seed=seed)
            classifier, decay = fit_probe(train_x[idx], train_y[idx], num_classes, seed=seed, **fit)
            accuracies.append(accuracy(classifier, test_x, test_y))
            decays.append(decay)
            n_train = len(idx)
            advance(1)
        results[name] = _summary(accuracies, n_train, n_test, weight_decays=decays)
    knn = knn_accuracy(
        train_x, train_y, test_x, test_y, num_classes, k=protocol.knn_k, temperature=protocol.knn_temperature
    )
    advance(1)
    results[KNN] = _summary([knn], int(train_y.shape[0]), n_test, k=protocol.knn_k)
    return results


def gains(
    model: Mapping[str, Mapping[str, Any]], baseline: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """``{probe: {mean, std, differences}}``: ``model``'s accuracy minus ``baseline``'s, seed by seed
    (both were probed on the same images with the same seeds)."""
    out = {}
    for name, result in model.items():
        diffs = [a - b for a, b in zip(result["accuracies"], baseline[name]["accuracies"], strict=True)]
        values = torch.tensor(diffs, dtype=torch.float64)
        out[name] = {
            "mean": round(float(values.mean()), 6),
            "std": round(float(values.std()) if len(diffs) > 1 else 0.0, 6),
            "differences": [round(d, 6) for d in diffs],
        }
    return out
