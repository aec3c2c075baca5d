"""Which layer a probe reads: an encoder's stages, each averaged over its spatial positions.

The last stage pooled is what an encoder returns (``last``). An earlier stage can carry more of what
a downstream task needs, all the more after a short pretraining that has not yet shaped the deep
layers, so a probe can read any stage instead; the protocol reads ``auto``, the stage
:data:`PROBED_STAGE` names for the encoder's kind (``layer2`` of a ResNet, else the last stage):

* ResNets: ``layer1`` … ``layer4``, torchvision's stage names (64, 128, 256, 512 channels for
  ResNet-18; four times that for ResNet-50); ``layer4`` is the encoder's own output.
* ``alexnet_small``: ``conv1`` … ``conv5``, each convolution's output after its ReLU and before any
  max pool (32, 64, 128, 128, 256 channels); ``conv5`` is the encoder's own output.

Several stages come out of one forward pass (:class:`PooledStages`), which stops after the deepest
one asked for. Of an encoder from elsewhere only its output can be read, as ``last``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from corpus.errors import UsageProblem
from pretrain.models import AlexNetSmall, ResNetEncoder
from pretrain.protocol import AUTO, LAST

__all__ = ["PROBED_STAGE", "PooledStages", "resolve_layers", "stage_modules"]

#: The stage ``auto`` reads, by encoder class: the protocol's (``probe-v2``). At its 64 px a
#: ResNet's layer2 has 8x8 positions and layer4 only 2x2; the CPU recipe moves layer2's linear
#: probe by +3.8 points and the last stage's by +1.6 (3 seeds, experiments/RESULTS.md).
PROBED_STAGE: dict[type[nn.Module], str] = {ResNetEncoder: "layer2", AlexNetSmall: LAST}


def stage_modules(encoder: nn.Module) -> dict[str, nn.Module]:
    """The modules whose outputs are ``encoder``'s stages, by name, from the input onwards (none
    for an encoder this module does not know: only its output, ``last``, can be read)."""
    if isinstance(encoder, ResNetEncoder):
        return {f"layer{i}": getattr(encoder, f"layer{i}") for i in range(1, 5)}
    if isinstance(encoder, AlexNetSmall):
        relus = [m for m in encoder.features if isinstance(m, nn.ReLU)]
        return {f"conv{i}": m for i, m in enumerate(relus, start=1)}
    return {}


def resolve_layers(encoder: nn.Module, layers: Sequence[str]) -> tuple[str, ...]:
    """``layers`` as stage names (``auto`` becomes the protocol's stage for the encoder, then
    ``last`` the last stage's, or stays ``last`` for an encoder of unknown stages), each once, in the
    order given."""
    stages = list(stage_modules(encoder))
    resolved: list[str] = []
    for name in layers:
        if name == AUTO:
            name = next((v for k, v in PROBED_STAGE.items() if isinstance(encoder, k)), LAST)
        stage = stages[-1] if name == LAST and stages else name
        if stage not in stages and stage != LAST:
            arch = getattr(encoder, "arch", type(encoder).__name__)
            raise UsageProblem(
                f"{arch} has no layer {name!r}",
                hint=f"choose one of: {', '.join([AUTO, LAST, *stages])}",
            )
        if stage not in resolved:
            resolved.append(stage)
    if not resolved:
        raise UsageProblem("no layer to probe", hint=f"pass a layer, e.g. {LAST}")
    return tuple(resolved)


class _Reached(Exception):
    """Raised by the deepest stage's hook: the rest of the network is not needed."""


class PooledStages(nn.Module):
    """``encoder`` read at ``layers``: ``forward(x)`` returns ``{stage: (n, C) float features}``."""

    def __init__(self, encoder: nn.Module, layers: Sequence[str] = (LAST,)) -> None:
        super().__init__()
        self.encoder = encoder
        self.layers = resolve_layers(encoder, layers)
        modules = stage_modules(encoder)
        self._modules_by_stage = {name: modules[name] for name in self.layers if name in modules}
        self._deepest = max(self.layers, key=list(modules).index) if modules else LAST

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if not self._modules_by_stage:  # an encoder of unknown stages: its output
            return {LAST: self.encoder(x).float()}
        out: dict[str, torch.Tensor] = {}

        def hook_for(name: str):
            def hook(module: nn.Module, args: object, output: torch.Tensor) -> None:
                # pooled at once: alexnet_small's ReLUs work in place on what comes next
                out[name] = output.float().mean(dim=(-2, -1))
                if name == self._deepest:
                    raise _Reached

            return hook

        handles = [m.register_forward_hook(hook_for(n)) for n, m in self._modules_by_stage.items()]
        try:
            self.encoder(x)
        except _Reached:
            pass
        finally:
            for handle in handles:
                handle.remove()
        return {name: out[name] for name in self.layers}
