"""Learning methods: supervised program classification, SupCon, SimCLR and MoCo v2, with MixUp labels.

A method is an ``nn.Module`` that owns the encoder (its ``backbone`` attribute, the thing a
checkpoint exports) and whatever heads, momentum copies and queues the method needs. The training
loop only calls ``loss, metrics = method(batch)``, where ``batch`` is a dict:

- ``"views"``: list of float tensors ``(N, 3, H, W)``, augmented and normalised; one view suffices
  for supervised training, the contrastive methods need two (SupCon and SimCLR take more).
- ``"labels"``: long ``(N,)``, the program index of each image.
- optionally ``"mix_labels"`` long ``(N, K)`` and ``"mix_weights"`` float ``(N, K)``: the image is a
  MixUp of K programs with these weights (``labels`` is then the heaviest one).

How each method uses MixUp labels:

- supervised: the target is the weights scattered over the classes (a soft cross-entropy).
- SupCon: two images are positives to the degree their label distributions overlap,
  ``sum_c min(p_i[c], p_j[c])``; for unmixed images this is exactly SupCon's same-label indicator,
  and two views of one mixed image always overlap fully. Each anchor's loss is the overlap-weighted
  mean of the log-probabilities of its positives.
- SimCLR and MoCo v2 use no labels: the views of one mixed image are the positive pair, as in the
  paper's MixUp runs.

``metrics`` holds plain floats for logging: always ``loss``, and an accuracy that says whether the
pretext task is being learned (``acc`` for supervised, ``pos_acc`` otherwise: how often an anchor's
most similar candidate is one of its positives).
"""

from __future__ import annotations

import copy
import inspect

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from corpus.errors import UsageProblem
from pretrain.config import METHODS

Batch = dict[str, object]
# MoCo's split BatchNorm: smaller chunks make batch statistics too noisy to train well (a batch
# under twice this size runs unsplit).
MIN_BN_CHUNK = 16


def soft_targets(mix_labels: torch.Tensor, mix_weights: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(N, num_classes)`` label distributions: the weights scattered (and summed) over the classes."""
    out = torch.zeros(mix_labels.shape[0], num_classes, device=mix_weights.device, dtype=mix_weights.dtype)
    return out.scatter_add_(1, mix_labels, mix_weights)


def _label_lists(batch: Batch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Each sample's labels and weights ``(N, K)``: the MixUp ones, or its one label with weight 1."""
    if "mix_labels" in batch and batch["mix_labels"] is not None:
        labels = batch["mix_labels"].to(device)  # type: ignore[union-attr]
        weights = batch["mix_weights"].to(device=device, dtype=torch.float32)  # type: ignore[union-attr]
        return labels, weights
    labels = batch["labels"].to(device)  # type: ignore[union-attr]
    return labels[:, None], torch.ones(labels.shape[0], 1, device=device)


def label_overlap(labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``(M, M)`` overlap ``sum_c min(p_i[c], p_j[c])`` of the label distributions of M samples.

    Computed from the ``(M, K)`` lists without materialising ``(M, num_classes)`` distributions, so
    it costs the same for 21k programs as for 4. A label listed twice in one row is merged first.
    """
    same = labels[:, :, None] == labels[:, None, :]  # (M, K, K) within a row
    merged = (same.float() * weights[:, None, :]).sum(dim=2)
    earlier = torch.tril(same, diagonal=-1).any(dim=2)  # not the first occurrence of its label
    merged = merged.masked_fill(earlier, 0.0)
    match = labels[:, :, None, None] == labels[None, None, :, :]  # (M, K, M, K)
    pair_min = torch.minimum(merged[:, :, None, None], merged[None, None, :, :])
    return (match * pair_min).sum(dim=(1, 3))


def weighted_contrastive_loss(
    z: torch.Tensor,
    positive_weights: torch.Tensor,
    temperature: float,
    excluded: torch.Tensor | None = None,
) -> tuple[torch.Tensor, float]:
    """SupCon's loss (Khosla et al. 2020, L_out) with real-valued positive weights.

    ``z`` are L2-normalised embeddings ``(M, d)``; ``positive_weights`` ``(M, M)`` say how much j is a
    positive for anchor i (the diagonal is ignored). Each anchor's loss is the weighted mean of
    ``-log softmax`` over all other samples; with 0/1 weights from labels this is SupCon, with weights
    marking only the other view of the same image it is SimCLR's NT-Xent. ``excluded`` ``(M, M)``
    (bool) marks pairs that are neither positives nor negatives: left out as the diagonal is.
    Returns the mean loss and the share of anchors whose nearest other sample is a positive.
    """
    m = z.shape[0]
    eye = torch.eye(m, dtype=torch.bool, device=z.device)
    if excluded is not None:
        eye = eye | excluded.to(z.device)
    logits = (z @ z.T / temperature).masked_fill(eye, float("-inf"))
    log_prob = (logits - torch.logsumexp(logits, dim=1, keepdim=True)).masked_fill(eye, 0.0)
    w = positive_weights.to(z.dtype).masked_fill(eye, 0.0)
    per_anchor = -(w * log_prob).sum(dim=1) / w.sum(dim=1).clamp(min=1e-12)
    has_positive = w.sum(dim=1) > 0
    loss = per_anchor[has_positive].mean()
    with torch.no_grad():
        nearest = logits.argmax(dim=1)
        pos_acc = (w[torch.arange(m, device=z.device), nearest] > 0).float().mean().item()
    return loss, pos_acc


class ProjectionHead(nn.Sequential):
    """The 2-layer MLP of SimCLR, SupCon and MoCo v2: Linear, ReLU, Linear."""

    def __init__(self, dim: int, hidden: int, out: int) -> None:
        super().__init__(nn.Linear(dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out))


class Method(nn.Module):
    """Common ground: the encoder as ``backbone``, its feature size as ``dim``."""

    name = "method"
    min_views = 1

    def __init__(self, backbone: nn.Module, dim: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.dim = dim

    def _views(self, batch: Batch) -> list[torch.Tensor]:
        views = list(batch["views"])  # type: ignore[call-overload]
        if len(views) < self.min_views:
            raise UsageProblem(
                f"{self.name} needs {self.min_views} views per image, the batch has {len(views)}",
                hint="let the data layer produce two augmented views for contrastive methods",
            )
        return views

    def forward(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:  # pragma: no cover
        raise NotImplementedError


class Supervised(Method):
    """Classify the program index with a linear head (soft cross-entropy under MixUp).

    Every view given is classified, so a two-view batch is simply twice the data.
    """

    name = "supervised"

    def __init__(self, backbone: nn.Module, dim: int, num_classes: int) -> None:
        super().__init__(backbone, dim)
        self.num_classes = num_classes
        self.head = nn.Linear(dim, num_classes)

    def forward(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        views = self._views(batch)
        logits = self.head(self.backbone(torch.cat(views)))
        labels = batch["labels"].to(logits.device).repeat(len(views))  # type: ignore[union-attr]
        if batch.get("mix_labels") is not None:
            mix_labels, mix_weights = _label_lists(batch, logits.device)
            target = soft_targets(mix_labels, mix_weights, self.num_classes).repeat(len(views), 1)
            loss = F.cross_entropy(logits, target)
        else:
            loss = F.cross_entropy(logits, labels)
        acc = (logits.detach().argmax(dim=1) == labels).float().mean().item()
        return loss, {"loss": loss.detach().item(), "acc": acc}


class SupCon(Method):
    """Supervised contrastive learning (Khosla et al. 2020) on a 2-layer projection head.

    Positives are all other views of images of the same program (weighted by label overlap under
    MixUp, see the module docstring). The loss uses the batch on this process only.
    """

    name = "supcon"
    min_views = 2

    def __init__(
        self, backbone: nn.Module, dim: int, num_classes: int, temperature: float = 0.1, proj_dim: int = 128
    ) -> None:
        super().__init__(backbone, dim)
        self.temperature = temperature
        self.head = ProjectionHead(dim, dim, proj_dim)

    def _positive_weights(self, batch: Batch, n: int, n_views: int, device: torch.device) -> torch.Tensor:
        labels, weights = _label_lists(batch, device)
        return label_overlap(labels, weights).repeat(n_views, n_views)

    def _excluded(self, batch: Batch, n: int, n_views: int, device: torch.device) -> torch.Tensor | None:
        """Pairs that are neither positives nor negatives: none for SupCon."""
        return None

    def forward(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        views = self._views(batch)
        n = views[0].shape[0]
        z = F.normalize(self.head(self.backbone(torch.cat(views))), dim=1)
        weights = self._positive_weights(batch, n, len(views), z.device)
        excluded = self._excluded(batch, n, len(views), z.device)
        loss, pos_acc = weighted_contrastive_loss(z, weights, self.temperature, excluded)
        return loss, {"loss": loss.detach().item(), "pos_acc": pos_acc}


class SimCLR(SupCon):
    """SimCLR (Chen et al. 2020): NT-Xent over the views of a batch, no labels.

    The positives of an anchor are the other views of the same image; everything else in the batch
    (on this process) is a negative, except, with ``exclude_same_program``, the other images of the
    same program (any program in common under MixUp): a stream that groups samples by program
    (``samples_per_program`` > 1, :mod:`pretrain.data`) puts several in a batch, and they are no
    negatives (a program that changes slowly draws near-copies). The training loop sets it then.
    """

    name = "simclr"

    def __init__(
        self,
        backbone: nn.Module,
        dim: int,
        num_classes: int,
        temperature: float = 0.2,
        proj_dim: int = 128,
        exclude_same_program: bool = False,
    ) -> None:
        super().__init__(backbone, dim, num_classes, temperature=temperature, proj_dim=proj_dim)
        self.exclude_same_program = exclude_same_program

    def _positive_weights(self, batch: Batch, n: int, n_views: int, device: torch.device) -> torch.Tensor:
        return torch.eye(n, device=device).repeat(n_views, n_views)

    def _excluded(self, batch: Batch, n: int, n_views: int, device: torch.device) -> torch.Tensor | None:
        if not self.exclude_same_program:
            return None
        labels, weights = _label_lists(batch, device)
        others = (label_overlap(labels, weights) > 0) & ~torch.eye(n, dtype=torch.bool, device=device)
        return others.repeat(n_views, n_views)


def _all_gather(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every process when torch.distributed runs, else return it (no grad)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


class MoCoV2(Method):
    """MoCo v2 (Chen et al. 2020): a momentum encoder, a queue of negatives, an MLP head.

    ``backbone`` and ``head`` make the query encoder, trained by gradient; ``key_backbone`` and
    ``key_head`` are its exponential moving average (``momentum_update``, called at the start of each
    training forward). The queue of normalised keys is a buffer, so it travels with the method's
    ``state_dict`` into checkpoints, and under torch.distributed every process enqueues the keys of all
    processes.

    MoCo's shuffled BatchNorm exists because batch statistics shared by a query and its key let the
    model find the positive without learning anything. Its single-device form (MoCo's own CIFAR
    demo) is used here: both encoders run on ``bn_splits`` chunks of the batch (of at least
    :data:`MIN_BN_CHUNK` images each; fewer chunks for small batches), the keys in a shuffled order,
    so a query and its key see different batch statistics. The shuffle is seeded
    from a step counter kept as a buffer, so a resumed run shuffles as the uninterrupted one did.
    """

    name = "mocov2"
    min_views = 2

    def __init__(
        self,
        backbone: nn.Module,
        dim: int,
        num_classes: int,
        queue_size: int = 4096,
        momentum: float = 0.999,
        temperature: float = 0.2,
        proj_dim: int = 128,
        bn_splits: int = 4,
    ) -> None:
        super().__init__(backbone, dim)
        if queue_size < 1:
            raise UsageProblem(
                f"MoCo queue size must be positive, got {queue_size}", hint="the default is 4096"
            )
        if not 0.0 <= momentum < 1.0:
            raise UsageProblem(
                f"MoCo momentum must be in [0, 1), got {momentum}", hint="the default is 0.999"
            )
        self.momentum = momentum
        self.temperature = temperature
        self.bn_splits = max(1, bn_splits)
        self.head = ProjectionHead(dim, dim, proj_dim)
        self.key_backbone = copy.deepcopy(backbone)
        self.key_head = copy.deepcopy(self.head)
        for p in self._key_parameters():
            p.requires_grad_(False)
        self.register_buffer("queue", F.normalize(torch.randn(proj_dim, queue_size), dim=0))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def _key_parameters(self) -> list[nn.Parameter]:
        return [*self.key_backbone.parameters(), *self.key_head.parameters()]

    def _query_parameters(self) -> list[nn.Parameter]:
        return [*self.backbone.parameters(), *self.head.parameters()]

    @torch.no_grad()
    def momentum_update(self) -> None:
        """Move the key encoder towards the query encoder: ``k = m * k + (1 - m) * q``."""
        for q, k in zip(self._query_parameters(), self._key_parameters(), strict=True):
            k.mul_(self.momentum).add_(q.detach(), alpha=1.0 - self.momentum)

    def _encode(
        self, backbone: nn.Module, head: nn.Module, x: torch.Tensor, order: torch.Tensor | None
    ) -> torch.Tensor:
        """Embed ``x`` in ``bn_splits`` chunks (training only), optionally in a shuffled order."""
        splits = min(self.bn_splits, x.shape[0] // MIN_BN_CHUNK) if self.training else 1
        if splits <= 1:
            return F.normalize(head(backbone(x)), dim=1)
        if order is not None:
            x = x[order]
        z = torch.cat([head(backbone(chunk)) for chunk in x.chunk(splits)])
        if order is not None:
            z = z[torch.argsort(order)]
        return F.normalize(z, dim=1)

    @torch.no_grad()
    def _enqueue(self, keys: torch.Tensor) -> None:
        keys = _all_gather(keys)
        size = self.queue.shape[1]
        keys = keys[-size:]
        ptr = int(self.queue_ptr)
        idx = (ptr + torch.arange(keys.shape[0], device=keys.device)) % size
        self.queue[:, idx] = keys.T.to(self.queue.dtype)
        self.queue_ptr.fill_((ptr + keys.shape[0]) % size)

    def forward(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        views = self._views(batch)
        q = self._encode(self.backbone, self.head, views[0], None)
        with torch.no_grad():
            if self.training:
                self.momentum_update()
            n = views[1].shape[0]
            order = torch.randperm(n, generator=torch.Generator().manual_seed(int(self.steps))).to(q.device)
            k = self._encode(self.key_backbone, self.key_head, views[1], order)
        l_pos = (q * k).sum(dim=1, keepdim=True)
        l_neg = q @ self.queue.clone().detach()
        logits = torch.cat([l_pos, l_neg], dim=1) / self.temperature
        loss = F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long, device=q.device))
        pos_acc = (logits.detach().argmax(dim=1) == 0).float().mean().item()
        if self.training:
            self._enqueue(k)
            self.steps += 1
        return loss, {"loss": loss.detach().item(), "pos_acc": pos_acc}


_CLASSES: dict[str, type[Method]] = {
    "supervised": Supervised,
    "supcon": SupCon,
    "simclr": SimCLR,
    "mocov2": MoCoV2,
}


def build_method(name: str, backbone: nn.Module, dim: int, num_classes: int, **kw: object) -> Method:
    """The method ``name`` around ``backbone`` (feature size ``dim``) for ``num_classes`` programs.

    Keyword options go to the method: ``temperature`` and ``proj_dim`` (contrastive methods),
    ``queue_size``, ``momentum`` and ``bn_splits`` (MoCo v2).
    """
    if name not in _CLASSES:
        raise UsageProblem(f"unknown method {name!r}", hint=f"choose one of: {', '.join(METHODS)}")
    cls = _CLASSES[name]
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "backbone", "dim", "num_classes"}
    unknown = sorted(set(kw) - accepted)
    if unknown:
        raise UsageProblem(
            f"method {name} has no option {', '.join(unknown)}",
            hint=f"its options are: {', '.join(sorted(accepted)) or 'none'}",
        )
    return cls(backbone, dim, num_classes, **kw)  # type: ignore[arg-type]
