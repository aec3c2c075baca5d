"""Torch-only augmentations: shapes, ranges, determinism, and what each transform does."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from corpus.errors import UsageProblem
from pretrain.augment import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Augment,
    color_jitter,
    gaussian_blur,
    normalize,
    random_grayscale,
    random_resized_crop,
)


def images(n: int = 6, size: int = 40, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("strength", ["simclr", "light", "gray", "none"])
def test_presets_keep_shape_and_unit_range(strength: str) -> None:
    out = Augment(32, strength)(images(), gen(0))
    assert out.shape == (6, 3, 32, 32)
    assert out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1


def test_same_seed_same_views_other_seed_other_views() -> None:
    aug, x = Augment(32, "simclr"), images()
    a, b, c = aug(x, gen(7)), aug(x, gen(7)), aug(x, gen(8))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_samples_of_a_batch_are_augmented_independently() -> None:
    x = images(1).expand(8, -1, -1, -1)
    out = Augment(32, "simclr")(x, gen(0))
    assert len({round(float(v), 5) for v in out.mean(dim=(1, 2, 3))}) == 8


def test_per_sample_generators_make_a_view_independent_of_its_batch() -> None:
    aug, x = Augment(32, "simclr"), images(5)
    whole = aug(x, [gen(100 + i) for i in range(5)])
    alone = aug(x[3:4], [gen(103)])
    assert torch.allclose(whole[3:4], alone, atol=1e-6)


def test_none_preset_at_the_same_size_changes_nothing() -> None:
    x = images(size=32)
    assert torch.allclose(Augment(32, "none")(x, gen(0)), x, atol=1e-6)


def test_gray_preset_makes_every_view_grey_and_otherwise_augments_as_simclr() -> None:
    """The CPU recipe's views carry no palette for the pretext to lean on (issue 13.2)."""
    x = images()
    gray = Augment(32, "gray")(x, gen(0))
    assert torch.allclose(gray[:, 0], gray[:, 1], atol=1e-6)
    assert torch.allclose(gray[:, 1], gray[:, 2], atol=1e-6)
    colour = Augment(32, "simclr")(x, gen(0))
    assert not torch.allclose(colour[:, 0], colour[:, 1], atol=1e-3)
    assert Augment(32, "gray").config == replace(Augment(32, "simclr").config, grayscale_p=1.0)


def test_full_crop_with_certain_flip_is_a_mirror_image() -> None:
    x = images(size=24)
    out = random_resized_crop(x, 24, gen(0), scale=(1.0, 1.0), ratio=(1.0, 1.0), flip_p=1.0)
    assert torch.allclose(out, x.flip(-1), atol=1e-6)


def test_crops_cover_the_requested_area_and_aspect_ratio() -> None:
    # On a linear ramp the resampled values span the crop's extent along that axis.
    size, n = 64, 200
    ramp = torch.linspace(0, 1, 2 * size + 1)[1::2]  # pixel centres
    x = torch.zeros(n, 3, size, size)
    x[:, 0] = ramp[None, None, :]
    x[:, 1] = ramp[None, :, None]
    out = random_resized_crop(x, size, gen(1), scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3))
    width = (out[:, 0].amax(dim=(1, 2)) - out[:, 0].amin(dim=(1, 2))) * size / (size - 1)
    height = (out[:, 1].amax(dim=(1, 2)) - out[:, 1].amin(dim=(1, 2))) * size / (size - 1)
    area, aspect = width * height, width / height
    assert area.min() >= 0.2 - 0.02 and area.max() <= 1 + 1e-4
    assert aspect.min() >= 3 / 4 - 0.02 and aspect.max() <= 4 / 3 + 0.02
    assert area.max() - area.min() > 0.5  # the range is actually explored


def test_jitter_with_probability_zero_is_identity_and_one_changes_every_image() -> None:
    x = images()
    assert torch.equal(color_jitter(x, gen(0), p=0.0), x)
    changed = (color_jitter(x, gen(0), p=1.0) - x).abs().amax(dim=(1, 2, 3))
    assert (changed > 1e-3).all()


def test_hue_shift_keeps_gray_pixels_gray() -> None:
    x = torch.full((4, 3, 8, 8), 0.5)
    out = color_jitter(x, gen(0), brightness=0, contrast=0, saturation=0, hue=0.5, p=1.0)
    assert torch.allclose(out, x, atol=1e-5)


def test_grayscale_gives_equal_channels_with_imagenet_luma() -> None:
    x = images()
    out = random_grayscale(x, gen(0), p=1.0)
    assert torch.allclose(out[:, 0], out[:, 1]) and torch.allclose(out[:, 1], out[:, 2])
    luma = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    assert torch.allclose(out[:, 0], luma, atol=1e-6)
    assert torch.equal(random_grayscale(x, gen(0), p=0.0), x)


def test_blur_smooths_noise_keeps_flat_images_and_can_be_skipped() -> None:
    x = images(size=64)
    blurred = gaussian_blur(x, gen(0), sigma=(2.0, 2.0), p=1.0)
    assert blurred.std() < 0.8 * x.std()
    assert torch.allclose(blurred.mean(), x.mean(), atol=0.01)
    flat = torch.full((2, 3, 16, 16), 0.3)
    assert torch.allclose(gaussian_blur(flat, gen(0), p=1.0), flat, atol=1e-6)
    assert torch.equal(gaussian_blur(x, gen(0), p=0.0), x)


def test_transforms_draw_the_same_randomness_whatever_they_do() -> None:
    # Switching blur off must not shift the random numbers of whatever comes after it.
    g1, g2 = gen(3), gen(3)
    gaussian_blur(images(), g1, p=0.0)
    gaussian_blur(images(), g2, p=1.0)
    assert torch.equal(torch.rand(4, generator=g1), torch.rand(4, generator=g2))


def test_normalize_uses_imagenet_statistics_and_inverts() -> None:
    x = images()
    y = normalize(x)
    assert torch.allclose(normalize(torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1)), torch.zeros(1, 3, 1, 1))
    std = torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1)
    assert torch.allclose(y * std + torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1), x, atol=1e-6)


def test_options_override_a_preset_and_bad_names_are_usage_problems() -> None:
    aug = Augment(48, "light", blur_p=0.25)
    assert aug.config.blur_p == 0.25 and aug.config.crop_scale == (0.5, 1.0) and aug.config.size == 48
    custom = Augment(16, "none", flip_p=1.0)  # every image mirrored, nothing else
    x = images(size=16)
    assert torch.allclose(custom(x, gen(0)), x.flip(-1), atol=1e-5)
    with pytest.raises(UsageProblem, match="strength"):
        Augment(32, "heavy")
    with pytest.raises(UsageProblem, match="option"):
        Augment(32, "simclr", sharpen=1.0)


def test_works_on_non_square_inputs() -> None:
    x = torch.rand(3, 3, 30, 50)
    out = Augment(24, "simclr")(x, gen(0))
    assert out.shape == (3, 3, 24, 24) and math.isfinite(float(out.sum()))
