"""Batched image augmentations on tensors, torch only (no torchvision).

Every transform takes float images ``(N, 3, H, W)`` in [0, 1] and a source of randomness, and
returns images of the same kind. Randomness is drawn per sample, so the N images of a batch are
augmented independently, as torchvision does one image at a time, but at the cost of a few batched
tensor operations. The source is either one ``torch.Generator`` for the whole batch or a sequence of
N generators, one per sample: the second form makes a sample's augmentation depend only on its
own generator (seeded from (seed, global sample index) by the data layer), not on which other
samples share its batch, which a resumed or re-sharded run needs.

Every transform draws the same amount of randomness whether or not it fires, so changing one
probability does not reshuffle the numbers every later transform sees.

:class:`Augment` composes them from a preset, MoCo v2 / SimCLR style: random resized crop, flip,
colour jitter (with probability), grayscale, blur. :func:`normalize` applies ImageNet's mean and std.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from corpus.errors import UsageProblem

Randomness = torch.Generator | Sequence[torch.Generator]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# ITU-R BT.601 luma, the weights torchvision's rgb_to_grayscale uses.
_LUMA = (0.299, 0.587, 0.114)


def uniform(randomness: Randomness, n: int, k: int = 1) -> torch.Tensor:
    """``(n, k)`` uniform numbers in [0, 1): from one generator, or row i from the i-th generator."""
    if isinstance(randomness, torch.Generator):
        return torch.rand(n, k, generator=randomness, device=randomness.device).cpu()
    if len(randomness) != n:
        raise ValueError(f"got {len(randomness)} generators for a batch of {n}")
    return torch.stack([torch.rand(k, generator=g, device=g.device).cpu() for g in randomness])


def _column(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-sample values shaped ``(N, 1, 1, 1)`` on x's device and dtype, to broadcast over images."""
    return values.reshape(-1, 1, 1, 1).to(device=x.device, dtype=x.dtype)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """Luma ``(N, 1, H, W)``."""
    w = torch.tensor(_LUMA, device=x.device, dtype=x.dtype).reshape(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


def random_resized_crop(
    x: torch.Tensor,
    size: int,
    randomness: Randomness,
    scale: tuple[float, float] = (0.2, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    flip_p: float = 0.0,
) -> torch.Tensor:
    """Crop a random area and aspect ratio of each image and resample it to ``size`` x ``size``.

    As torchvision: area a fraction in ``scale`` of the image, aspect ratio log-uniform in ``ratio``,
    up to 10 tries to fit inside the image, else the whole image. All samples are resampled at once
    with one ``affine_grid``/``grid_sample`` (bilinear); a horizontal flip with probability
    ``flip_p`` costs nothing extra, it is a sign in the same affine map.
    """
    n, _, h, w = x.shape
    tries = 10
    u = uniform(randomness, n, 3 * tries + 3).double()
    area = scale[0] + (scale[1] - scale[0]) * u[:, :tries]
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[:, tries : 2 * tries]
    aspect = torch.exp(log_r)
    # Crop width and height as fractions of the image's: area * h * w pixels at aspect width/height.
    cw = torch.sqrt(area * aspect * h / w)
    ch = torch.sqrt(area / aspect * w / h)
    fits = (cw <= 1) & (ch <= 1)
    first = torch.where(fits.any(dim=1), fits.float().argmax(dim=1), torch.full((n,), -1))
    rows = torch.arange(n)
    cw = torch.where(first >= 0, cw[rows, first.clamp(min=0)], torch.ones(n, dtype=cw.dtype))
    ch = torch.where(first >= 0, ch[rows, first.clamp(min=0)], torch.ones(n, dtype=ch.dtype))
    # Centres (in [-1, 1] grid units) chosen so the crop stays inside the image.
    cx = (2 * u[:, -3] - 1) * (1 - cw)
    cy = (2 * u[:, -2] - 1) * (1 - ch)
    sign = torch.where(u[:, -1] < flip_p, -1.0, 1.0).double()
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = cw * sign
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = ch
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta.to(device=x.device, dtype=x.dtype), [n, 3, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _yiq_hue_matrices(angle: torch.Tensor, saturation: torch.Tensor) -> torch.Tensor:
    """Per-sample 3x3 RGB->RGB maps that rotate hue by ``angle`` and scale chroma by ``saturation``.

    A rotation of the chroma plane in YIQ space: the usual cheap stand-in for an HSV hue shift
    (close for moderate shifts, and one matrix product for the whole batch).
    """
    rgb2yiq = torch.tensor(
        [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=torch.float64
    )
    yiq2rgb = torch.linalg.inv(rgb2yiq)
    c, s = torch.cos(angle) * saturation, torch.sin(angle) * saturation
    m = torch.zeros(angle.shape[0], 3, 3, dtype=torch.float64)
    m[:, 0, 0] = 1
    m[:, 1, 1], m[:, 1, 2], m[:, 2, 1], m[:, 2, 2] = c, -s, s, c
    return yiq2rgb @ m @ rgb2yiq


def color_jitter(
    x: torch.Tensor,
    randomness: Randomness,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.4,
    hue: float = 0.1,
    p: float = 0.8,
) -> torch.Tensor:
    """Brightness, contrast, saturation and hue, each a random factor, together with probability ``p``.

    Factors as torchvision's ColorJitter: brightness/contrast/saturation uniform in [1-v, 1+v],
    hue a shift uniform in [-hue, hue] of a full turn. The order is fixed (brightness, contrast,
    then saturation and hue as one matrix) where torchvision shuffles it per image; values are
    clamped to [0, 1] after each step, as there.
    """
    n = x.shape[0]
    u = uniform(randomness, n, 5).double()
    apply = u[:, 0] < p
    if not bool(apply.any()):
        return x
    b = torch.where(apply, 1 + brightness * (2 * u[:, 1] - 1), 1.0)
    c = torch.where(apply, 1 + contrast * (2 * u[:, 2] - 1), 1.0)
    s = torch.where(apply, 1 + saturation * (2 * u[:, 3] - 1), 1.0)
    angle = torch.where(apply, 2 * math.pi * hue * (2 * u[:, 4] - 1), 0.0)
    x = (x * _column(b, x)).clamp(0, 1)
    mean = grayscale(x).mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - mean) * _column(c, x) + mean).clamp(0, 1)
    m = _yiq_hue_matrices(angle, s).to(device=x.device, dtype=x.dtype)
    x = torch.einsum("nij,njhw->nihw", m, x)
    return x.clamp(0, 1)


def random_grayscale(x: torch.Tensor, randomness: Randomness, p: float = 0.2) -> torch.Tensor:
    """Replace each image by its luma (on all three channels) with probability ``p``."""
    gray = _column(uniform(randomness, x.shape[0])[:, 0] < p, x).bool()
    return torch.where(gray, grayscale(x).expand_as(x), x)


def gaussian_blur(
    x: torch.Tensor,
    randomness: Randomness,
    sigma: tuple[float, float] = (0.1, 2.0),
    p: float = 0.5,
    kernel_fraction: float = 0.1,
) -> torch.Tensor:
    """Blur each image with probability ``p``, sigma uniform in ``sigma`` (pixels at 224 px).

    SimCLR's recipe: kernel about 10 % of the image side, sigma in [0.1, 2.0]. Sigma is scaled by
    ``side / 224`` so that a 64 px image is blurred as much, relative to its content, as a 224 px
    one. One separable depthwise convolution per axis covers the batch: samples not blurred get a
    delta kernel.
    """
    n, ch, h, w = x.shape
    u = uniform(randomness, n, 2).double()
    if not bool((u[:, 0] < p).any()):
        return x
    side = min(h, w)
    radius = max(1, int(kernel_fraction * side) // 2)
    sig = (sigma[0] + (sigma[1] - sigma[0]) * u[:, 1]) * side / 224
    taps = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-(taps[None, :] ** 2) / (2 * sig[:, None] ** 2))
    kernel = kernel / kernel.sum(dim=1, keepdim=True)
    delta = (taps == 0).double().expand(n, -1)
    kernel = torch.where((u[:, 0] < p)[:, None], kernel, delta)
    k = kernel.to(device=x.device, dtype=x.dtype).repeat_interleave(ch, dim=0)  # (N*C, taps)
    y = x.reshape(1, n * ch, h, w)
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="reflect"), k[:, None, None, :], groups=n * ch)
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="reflect"), k[:, None, :, None], groups=n * ch)
    return y.reshape(n, ch, h, w)


def normalize(x: torch.Tensor) -> torch.Tensor:
    """Subtract ImageNet's mean and divide by its std, per channel (what the encoders are fed)."""
    mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype).reshape(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype).reshape(1, 3, 1, 1)
    return (x - mean) / std


@dataclass(frozen=True)
class AugmentConfig:
    """What :class:`Augment` does; the presets fill it, keyword overrides adjust it."""

    size: int
    crop_scale: tuple[float, float] = (0.2, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    grayscale_p: float = 0.2
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)


# "simclr" is MoCo v2's recipe (SimCLR's, with colour jitter at 0.4/0.1); "light" keeps most of
# the image and its colours, for supervised runs; "none" only resamples to the target size.
PRESETS: dict[str, dict[str, object]] = {
    "simclr": {},
    "light": {
        "crop_scale": (0.5, 1.0),
        "jitter_p": 0.5,
        "brightness": 0.2,
        "contrast": 0.2,
        "saturation": 0.2,
        "hue": 0.05,
        "grayscale_p": 0.0,
        "blur_p": 0.0,
    },
    # "gray": simclr's, every view in grey levels: features that cannot lean on a program's palette
    # (issue 13.2's recipe; the probe's Fashion-MNIST is grey)
    "gray": {"grayscale_p": 1.0},
    "none": {
        "crop_scale": (1.0, 1.0),
        "crop_ratio": (1.0, 1.0),
        "flip_p": 0.0,
        "jitter_p": 0.0,
        "grayscale_p": 0.0,
        "blur_p": 0.0,
    },
}


class Augment:
    """The composed pipeline: crop (with flip), jitter, grayscale, blur; output in [0, 1].

    It does not normalise, so that previews can show its output: feed the model
    ``normalize(augment(x, generator))``.

    >>> aug = Augment(64, "simclr")
    >>> views = aug(images, torch.Generator().manual_seed(0))
    """

    def __init__(self, size: int, strength: str = "simclr", **overrides: object) -> None:
        if strength not in PRESETS:
            raise UsageProblem(
                f"unknown augmentation strength {strength!r}", hint=f"choose one of: {', '.join(PRESETS)}"
            )
        try:
            self.config = replace(AugmentConfig(size=size, **PRESETS[strength]), **overrides)  # type: ignore[arg-type]
        except TypeError as exc:
            raise UsageProblem(
                f"unknown augmentation option: {exc}", hint="see AugmentConfig for the options"
            ) from None
        self.strength = strength

    def __call__(self, x: torch.Tensor, randomness: Randomness) -> torch.Tensor:
        c = self.config
        x = random_resized_crop(x, c.size, randomness, c.crop_scale, c.crop_ratio, flip_p=c.flip_p)
        x = color_jitter(x, randomness, c.brightness, c.contrast, c.saturation, c.hue, p=c.jitter_p)
        x = random_grayscale(x, randomness, p=c.grayscale_p)
        x = gaussian_blur(x, randomness, c.blur_sigma, p=c.blur_p)
        return x

    def __repr__(self) -> str:
        return f"Augment({self.config})"
