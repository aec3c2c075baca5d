"""Tiny synthetic image problems for the pretrain tests: fast on one CPU thread, and learnable.

Class c is a sinusoidal grating in one of four orientations; each image has its own colour, phase
and frequency, so that instance discrimination (SimCLR, MoCo) has something to find too.
"""

from __future__ import annotations

import torch

from pretrain.augment import Augment, normalize
from pretrain.linear import one_thread  # noqa: F401  (the tests' name for it)

NUM_CLASSES = 4


def grating_images(labels: torch.Tensor, generator: torch.Generator, size: int = 32) -> torch.Tensor:
    """Float images ``(N, 3, size, size)`` in [0, 1], one grating orientation per label (0-3)."""
    n = labels.shape[0]
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    colour = 0.2 + 0.8 * torch.rand(n, 3, 1, 1, generator=generator)
    phase = torch.rand(n, 1, 1, generator=generator) * 6.28
    freq = 0.3 + 0.5 * torch.rand(n, 1, 1, generator=generator)
    coord = torch.stack([xx, yy, xx + yy, xx - yy])[labels]
    pattern = 0.5 + 0.5 * torch.sin(coord * freq + phase)
    noise = 0.05 * torch.randn(n, 3, size, size, generator=generator)
    return (colour * pattern[:, None] + noise).clamp(0, 1)


def make_batch(generator: torch.Generator, n: int = 16, size: int = 32, views: int = 2) -> dict[str, object]:
    """A training batch as the data layer hands it to a method: augmented, normalised views."""
    labels = torch.randint(0, NUM_CLASSES, (n,), generator=generator)
    images = grating_images(labels, generator, size)
    aug = Augment(size, "light")
    return {"views": [normalize(aug(images, generator)) for _ in range(views)], "labels": labels}
