"""Encoders: torchvision-compatible ResNet state dicts, flat features at small sizes, export form."""

from __future__ import annotations

import pytest
import torch

from corpus.errors import UsageProblem
from pretrain.models import ARCHS, build_backbone, full_resnet_state_dict
from tests.pretrain.synthetic import one_thread

# Facts of torchvision's resnet18()/resnet50() (torchvision/models/resnet.py): state-dict sizes with
# fc, parameter counts with fc (11,689,512 and 25,557,032), and the fc each has.
TORCHVISION = {
    "resnet18": {"keys": 122, "params": 11_689_512, "fc_in": 512},
    "resnet50": {"keys": 320, "params": 25_557_032, "fc_in": 2048},
}

# A sample of torchvision's names and shapes, spanning stem, stages, shortcuts and BN buffers.
SAMPLE_SHAPES = {
    "resnet18": {
        "conv1.weight": (64, 3, 7, 7),
        "bn1.weight": (64,),
        "bn1.num_batches_tracked": (),
        "layer1.0.conv1.weight": (64, 64, 3, 3),
        "layer1.1.bn2.running_mean": (64,),
        "layer2.0.conv1.weight": (128, 64, 3, 3),
        "layer2.0.downsample.0.weight": (128, 64, 1, 1),
        "layer2.0.downsample.1.running_var": (128,),
        "layer3.1.conv2.weight": (256, 256, 3, 3),
        "layer4.0.downsample.1.num_batches_tracked": (),
        "layer4.1.bn2.running_var": (512,),
    },
    "resnet50": {
        "conv1.weight": (64, 3, 7, 7),
        "layer1.0.conv1.weight": (64, 64, 1, 1),
        "layer1.0.conv3.weight": (256, 64, 1, 1),
        "layer1.0.downsample.0.weight": (256, 64, 1, 1),
        "layer1.1.conv1.weight": (64, 256, 1, 1),
        "layer2.0.conv1.weight": (128, 256, 1, 1),
        "layer2.0.conv2.weight": (128, 128, 3, 3),
        "layer2.3.bn3.weight": (512,),
        "layer3.5.bn3.running_mean": (1024,),
        "layer4.0.downsample.0.weight": (2048, 1024, 1, 1),
        "layer4.2.conv3.weight": (2048, 512, 1, 1),
        "layer4.2.bn3.num_batches_tracked": (),
    },
}


def torchvision_keys(arch: str) -> set[str]:
    """torchvision's key names, spelled out from its layout: blocks per stage, block kind, shortcuts."""
    blocks, convs, first_shortcut = {
        "resnet18": ((2, 2, 2, 2), 2, (False, True, True, True)),
        "resnet50": ((3, 4, 6, 3), 3, (True, True, True, True)),
    }[arch]
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = {"conv1.weight", *(f"bn1.{b}" for b in bn)}
    for stage, n in enumerate(blocks, start=1):
        for i in range(n):
            prefix = f"layer{stage}.{i}"
            for c in range(1, convs + 1):
                keys |= {f"{prefix}.conv{c}.weight", *(f"{prefix}.bn{c}.{b}" for b in bn)}
            if i == 0 and first_shortcut[stage - 1]:
                keys |= {f"{prefix}.downsample.0.weight", *(f"{prefix}.downsample.1.{b}" for b in bn)}
    return keys


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_resnet_state_dict_has_torchvision_keys_and_shapes_without_fc(arch: str) -> None:
    backbone, dim = build_backbone(arch)
    state = backbone.state_dict()
    facts = TORCHVISION[arch]
    assert dim == facts["fc_in"]
    assert set(state) == torchvision_keys(arch)
    assert len(state) == facts["keys"] - 2
    assert not any(k.startswith("fc.") for k in state)
    for name, shape in SAMPLE_SHAPES[arch].items():
        assert tuple(state[name].shape) == shape, name
    n_params = sum(p.numel() for p in backbone.parameters())
    assert n_params + facts["fc_in"] * 1000 + 1000 == facts["params"]


def test_resnet50_strides_on_the_3x3_convolution_like_torchvision_v1_5() -> None:
    backbone, _ = build_backbone("resnet50")
    block = backbone.layer2[0]
    assert block.conv1.stride == (1, 1)
    assert block.conv2.stride == (2, 2)
    assert block.downsample[0].stride == (2, 2)


# ResNet-50 at 128 px would add seconds, not coverage.
SIZES = [(arch, size) for arch in ARCHS for size in (32, 64, 128) if (arch, size) != ("resnet50", 128)]


@pytest.mark.parametrize(("arch", "size"), SIZES)
def test_encoders_give_flat_features_of_their_dimension(arch: str, size: int) -> None:
    with one_thread():
        torch.manual_seed(0)
        backbone, dim = build_backbone(arch)
        out = backbone(torch.rand(2, 3, size, size))
    assert out.shape == (2, dim)
    assert torch.isfinite(out).all()
    assert backbone.feature_dim == dim and backbone.arch == arch


def test_alexnet_small_is_small() -> None:
    backbone, dim = build_backbone("alexnet_small")
    assert dim == 256
    assert sum(p.numel() for p in backbone.parameters()) < 1_000_000


def test_unknown_arch_is_a_usage_problem_listing_the_choices() -> None:
    with pytest.raises(UsageProblem, match="vgg16") as info:
        build_backbone("vgg16")
    assert "resnet18" in info.value.hint


def test_full_resnet_state_dict_adds_a_reproducible_fresh_fc() -> None:
    backbone, dim = build_backbone("resnet18")
    full = full_resnet_state_dict(backbone)
    assert set(full) == set(backbone.state_dict()) | {"fc.weight", "fc.bias"}
    assert len(full) == TORCHVISION["resnet18"]["keys"]
    assert full["fc.weight"].shape == (1000, dim) and full["fc.bias"].shape == (1000,)
    # nn.Linear's initialisation range, and the same bytes on a second export.
    assert full["fc.weight"].abs().max() <= 1 / dim**0.5
    assert torch.equal(full["fc.weight"], full_resnet_state_dict(backbone)["fc.weight"])
    assert torch.equal(full["layer4.1.bn2.running_var"], backbone.state_dict()["layer4.1.bn2.running_var"])


def test_full_resnet_state_dict_uses_a_given_fc_and_checks_its_size() -> None:
    backbone, dim = build_backbone("resnet18")
    fc = torch.nn.Linear(dim, 10)
    full = full_resnet_state_dict(backbone, fc=fc)
    assert torch.equal(full["fc.weight"], fc.weight.detach())
    with pytest.raises(UsageProblem, match="takes 100 features"):
        full_resnet_state_dict(backbone, fc=torch.nn.Linear(100, 10))


def test_full_resnet_state_dict_refuses_alexnet_small() -> None:
    backbone, _ = build_backbone("alexnet_small")
    with pytest.raises(UsageProblem, match="torchvision has no"):
        full_resnet_state_dict(backbone)
