"""The plot both studies draw: probe accuracy against the number of programs (log scale), each point
the mean over training seeds with their standard deviation, beside the random-init baseline."""

from __future__ import annotations

import statistics
from pathlib import Path


def accuracy_against_programs(
    path: Path, series: dict[str, list[tuple[int, list[float]]]], baseline: float | None, xlabel: str
) -> None:
    """Write the plot of each of ``series`` ({label: [(programs, [accuracy % a seed])], sorted by
    programs}) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for label, points in series.items():
        ax.errorbar(
            [n for n, _ in points],
            [statistics.mean(v) for _, v in points],
            yerr=[statistics.stdev(v) if len(v) > 1 else 0.0 for _, v in points],
            marker="o",
            capsize=3,
            label=label,
        )
    if baseline is not None:
        ax.axhline(baseline, color="grey", linestyle="--", label="random init")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Fashion-MNIST linear probe top-1 %")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
