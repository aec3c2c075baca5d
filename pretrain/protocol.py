"""The evaluation protocol: what ``pretrain probe`` measures, fixed so a figure means the same thing
next time.

Every constant of the protocol is a field of :class:`ProbeProtocol`, and its defaults *are* the
protocol (version :data:`PROTOCOL_VERSION`): a report records all of them, and whether any was
changed. With the defaults, on a dataset (Fashion-MNIST unless told otherwise):

* **Images.** Both splits are resized to 64x64 (grayscale repeated on three channels, the shorter
  side resized, the centre cropped), whatever size the encoder trained at. The training pool is
  10,000 images of the training split and the test set 10,000 of the test split (all of
  Fashion-MNIST's), both drawn once with seed 0, so every model and every probe seed sees the same
  images.
* **Features.** The architecture's probed stage (``auto``: ``layer2`` of a ResNet, whose 8x8
  positions at 64 px carry more of what a short pretraining learned than ``layer4``'s 2x2; the
  last stage of any other encoder), averaged over positions (``layers`` picks others, see
  :mod:`pretrain.layers`), in eval mode, extracted once per model and split and standardised with
  the training pool's per-feature mean and std. Every probe reads these. ``probe-v1`` read the
  last stage: ``probe-v2`` fixed ``layer2`` for ResNets on one training seed's figures (seed 0,
  +3.7 points at layer2 against +1.0 at the last stage) before the recipe was confirmed on three
  other seeds (+3.8 against +1.6).
* **Linear probe.** Multinomial logistic regression on the whole pool (L-BFGS from zeros, at most
  100 iterations), its L2 weight decay chosen from 1e-5 … 1e-1 on a 20 % hold-out of the pool.
* **Few-shot linear probes.** The same on 1, 10 and 100 images a class drawn from the pool; with
  fewer than 5 a class nothing is held out and the decay is 1e-2.
* **k-NN probe.** Cosine similarity between standardised features, the k = 20 nearest images of the
  pool vote with weight exp(similarity / 0.07): the weighted k-NN of Wu et al. (2018) and DINO.
* **Seeds.** Five probe seeds (0-4) draw the few-shot subsets and the hold-outs that choose their
  weight decays; their figures are mean ± sample std over the seeds. The whole-pool linear probe
  and the k-NN probe read the same images whatever the seed: each is run once (std 0; the linear
  probe's hold-out drawn with seed 0). Every figure also carries the test set's own noise, which
  ``test_stderr`` states (the binomial standard error of an accuracy on that many test images:
  0.36 points at 85 % on 10,000); the gain's is smaller, both models being scored on the same
  images.
* **Baseline.** The same architecture at random initialisation (weights from seed 0), through the
  same protocol; ``gain`` is the checkpoint's accuracy minus the baseline's, seed by seed.

Feature extraction dominates the cost (about 130 images/s for ResNet-18 at 64 px on this
project's 2 CPU cores, 340 for ``alexnet_small``); the fits, on one thread, take from a fraction
of a second (1-shot) to half a minute (the whole pool) each. This module
holds the constants and the report's table, and imports no torch (``pretrain --help`` shows the
defaults); :mod:`pretrain.evaluation` runs the probes on features, :mod:`pretrain.probe` on models.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from corpus.errors import UsageProblem

__all__ = [
    "AUTO",
    "FEW_SHOT_WEIGHT_DECAY",
    "KNN",
    "LAST",
    "LINEAR",
    "MIN_PER_CLASS_TO_SELECT",
    "PROTOCOL_VERSION",
    "WEIGHT_DECAYS",
    "ProbeProtocol",
    "format_report",
    "probe_names",
]

PROTOCOL_VERSION = "probe-v2"
LINEAR = "linear"
KNN = "knn"
LAST = "last"  # the encoder's last stage, pooled: its own output (pretrain.layers names the others)
AUTO = "auto"  # the protocol's stage for the architecture (pretrain.layers.PROBED_STAGE)
WEIGHT_DECAYS = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
# Too few examples per class to hold some out: a fixed, fairly strong decay instead.
FEW_SHOT_WEIGHT_DECAY = 1e-2
MIN_PER_CLASS_TO_SELECT = 5


@dataclass(frozen=True)
class ProbeProtocol:
    """The protocol's constants; the defaults are the protocol (see the module docstring)."""

    size: int = 64
    max_train: int | None = 10_000  # the training pool; None: the whole split
    max_test: int | None = 10_000
    few_shot: tuple[int, ...] = (1, 10, 100)
    seeds: int = 5  # probe seeds 0 … seeds-1
    knn_k: int = 20
    knn_temperature: float = 0.07
    layers: tuple[str, ...] = (AUTO,)
    epochs: int = 100  # at most this many L-BFGS iterations a fit
    weight_decays: tuple[float, ...] = WEIGHT_DECAYS
    few_shot_weight_decay: float = FEW_SHOT_WEIGHT_DECAY
    subset_seed: int = 0  # draws the training pool and the test set
    init_seed: int = 0  # the random-init baseline's weights
    knn_metric: str = field(default="cosine", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "few_shot", tuple(sorted(set(self.few_shot))))
        object.__setattr__(self, "layers", tuple(self.layers))
        problems = []
        if self.size < 8:
            problems.append(f"image size {self.size} is too small (64 is the protocol's)")
        if self.seeds < 1:
            problems.append(f"{self.seeds} probe seeds: at least 1 is needed")
        if any(n < 1 for n in self.few_shot):
            problems.append(f"few-shot sizes must be at least 1 image a class, got {list(self.few_shot)}")
        if self.knn_k < 1 or self.knn_temperature <= 0:
            problems.append(
                f"k-NN needs k >= 1 and a temperature > 0, got {self.knn_k} and {self.knn_temperature}"
            )
        for name in ("max_train", "max_test"):
            value = getattr(self, name)
            if value is not None and value < 1:
                problems.append(f"{name} {value}: at least 1 image (or None for the whole split)")
        if not self.layers:
            problems.append("no layer to probe")
        if problems:
            raise UsageProblem(
                "; ".join(problems), hint="leave the probe's options out to use the protocol's defaults"
            )

    def record(self) -> dict[str, Any]:
        """What a report stores: every constant, the version, and whether all are the defaults."""
        return {"version": PROTOCOL_VERSION, **asdict(self), "default": self == ProbeProtocol()}


def probe_names(protocol: ProbeProtocol) -> list[str]:
    """The probes a protocol runs, in report order."""
    return [LINEAR, *(f"{n}-shot" for n in protocol.few_shot), KNN]


def _cell(result: Mapping[str, Any], signed: bool = False) -> str:
    sign = "+" if signed else ""
    return f"{100 * result['mean']:{sign}.2f} ± {100 * result['std']:.2f}"


def format_report(report: Mapping[str, Any]) -> str:
    """A report of :func:`pretrain.probe.probe_checkpoint` as a plain-text table (top-1 %)."""
    protocol = report["protocol"]
    models = list(report["results"])
    header = (
        f"{report['dataset']}, protocol {protocol['version']}"
        + ("" if protocol["default"] else " (modified)")
        + f": {protocol['size']} px, {report['n_train']} train / {report['n_test']} test images, "
        f"{protocol['seeds']} probe seeds; top-1 % (mean ± std over seeds)"
    )
    lines = [header]
    labels = {LINEAR: "linear", KNN: f"k-NN (k={protocol['knn_k']})"}
    for layer in report["results"][models[0]]:
        columns = [*(report["models"][m]["label"] for m in models)]
        if "gain" in report:
            columns.append("gain")
        rows = [[f"layer {layer}", *columns]]
        for name in report["results"][models[0]][layer]:
            row = [labels.get(name, name)]
            row += [_cell(report["results"][m][layer][name]) for m in models]
            if "gain" in report:
                row.append(_cell(report["gain"][layer][name], signed=True))
            rows.append(row)
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines.append("")
        lines += ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    stderr = report["results"][models[0]][next(iter(report["results"][models[0]]))][LINEAR]["test_stderr"]
    lines.append("")
    lines.append("linear and k-NN read the whole pool: run once (std 0); few-shot: one run a seed")
    lines.append(
        f"the test set's own noise: ±{100 * stderr:.2f} points on the linear probe "
        f"(one binomial standard error on {report['n_test']} images)"
    )
    return "\n".join(lines)
