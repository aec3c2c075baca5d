"""Encoders: ResNet-18/50 laid out exactly like torchvision's, and a small AlexNet-style net.

An encoder here is a network *without* its classification head: ``forward`` maps images
``(N, 3, H, W)`` to flat features ``(N, D)``. The learning methods put their own heads on top.

The ResNets rebuild torchvision's architecture (v1.5: the stride sits on the 3x3 convolution of a
bottleneck) module for module, so that ``state_dict()`` has torchvision's keys and shapes minus
``fc.*``: an encoder trained here loads into ``torchvision.models.resnet50()`` with
:func:`full_resnet_state_dict`, and torchvision itself is never a dependency. They keep the
ImageNet stem (7x7 stride-2 convolution and max pool) for that reason; at 32 px the last stage is
1x1, which the adaptive average pool handles.

``alexnet_small`` is for quick CPU runs at 32-64 px: five convolutions with batch norm, 256 features.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from corpus.errors import UsageProblem

ARCHS = ("resnet18", "resnet50", "alexnet_small")

# (block, blocks per stage) as torchvision's resnet18 / resnet50 constructors define them.
_RESNET_LAYOUT = {"resnet18": ("basic", (2, 2, 2, 2)), "resnet50": ("bottleneck", (3, 4, 6, 3))}


def _conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a shortcut (ResNet-18/34)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 - 3x3 (strided) - 1x1 with a shortcut (ResNet-50 and deeper, torchvision's v1.5)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNetEncoder(nn.Module):
    """torchvision's ResNet without ``fc``: same attribute names, same initialisation."""

    def __init__(self, arch: str):
        super().__init__()
        kind, layers = _RESNET_LAYOUT[arch]
        block: type[BasicBlock] | type[Bottleneck] = BasicBlock if kind == "basic" else Bottleneck
        self.arch = arch
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.feature_dim = 512 * block.expansion
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(
        self, block: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int, stride: int = 1
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                _conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


class AlexNetSmall(nn.Module):
    """Five conv-BN-ReLU layers and two max pools: AlexNet's shape at a CPU-friendly width.

    The first convolution is strided, as in AlexNet, because full-resolution layers dominate the
    cost on a CPU. Batch norm is there because quick runs are short: it lets a few hundred steps
    learn something. At 32 px the last three convolutions work on 4x4 maps.
    """

    feature_dim = 256

    def __init__(self) -> None:
        super().__init__()
        widths = (3, 32, 64, 128, 128, self.feature_dim)
        pool_after = {1, 2}
        layers: list[nn.Module] = []
        for i in range(5):
            first = i == 0
            layers += [
                nn.Conv2d(
                    widths[i],
                    widths[i + 1],
                    kernel_size=5 if first else 3,
                    stride=2 if first else 1,
                    padding=2 if first else 1,
                    bias=False,
                ),
                nn.BatchNorm2d(widths[i + 1]),
                nn.ReLU(inplace=True),
            ]
            if i in pool_after:
                layers.append(nn.MaxPool2d(kernel_size=2))
        self.arch = "alexnet_small"
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.avgpool(self.features(x)), 1)


def build_backbone(arch: str) -> tuple[nn.Module, int]:
    """A freshly initialised encoder for ``arch`` and its feature dimension D.

    The module has ``arch`` and ``feature_dim`` attributes, so code holding only the module (export,
    probing) knows what it is.
    """
    if arch in _RESNET_LAYOUT:
        model: nn.Module = ResNetEncoder(arch)
    elif arch == "alexnet_small":
        model = AlexNetSmall()
    else:
        raise UsageProblem(f"unknown architecture {arch!r}", hint=f"choose one of: {', '.join(ARCHS)}")
    return model, int(model.feature_dim)


def full_resnet_state_dict(
    backbone: nn.Module,
    num_classes: int = 1000,
    fc: nn.Linear | dict[str, torch.Tensor] | None = None,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """The encoder's weights plus ``fc.weight``/``fc.bias``: a state dict torchvision's ResNet loads.

    Pretraining learns no ImageNet head, so unless ``fc`` is given the head is fresh, initialised
    the way ``nn.Linear`` does it but from ``seed``, so that exporting twice writes the same bytes.
    """
    arch = getattr(backbone, "arch", None)
    if arch not in _RESNET_LAYOUT:
        raise UsageProblem(
            f"torchvision has no architecture {arch!r}; only ResNet encoders export as a torchvision ResNet",
            hint="export the encoder's plain state_dict instead",
        )
    dim = int(backbone.feature_dim)
    state = {k: v.detach().clone() for k, v in backbone.state_dict().items()}
    if fc is None:
        gen = torch.Generator().manual_seed(seed)
        bound = 1.0 / math.sqrt(dim)
        weight = (torch.rand(num_classes, dim, generator=gen) * 2 - 1) * bound
        bias = (torch.rand(num_classes, generator=gen) * 2 - 1) * bound
    else:
        fc_state = fc.state_dict() if isinstance(fc, nn.Module) else fc
        weight, bias = fc_state["weight"].detach().clone(), fc_state["bias"].detach().clone()
        if weight.shape[1] != dim:
            raise UsageProblem(
                f"the given fc takes {weight.shape[1]} features but {arch} gives {dim}",
                hint="pass an fc layer made for this encoder, or none for a fresh one",
            )
    state["fc.weight"] = weight
    state["fc.bias"] = bias
    return state
