"""Deterministic pictures that stand in for inputs we do not have or must not fetch.

Texture assets, videos, webcams, sound and the keyboard are replaced by procedural data: noise
seeded from the asset's name (so two programs reading the same asset see the same stand-in, and
every run the same pixels), gradients, silence and a keyboard with no key held. Plain numpy, no
OpenGL: the engine uploads them.
"""

from __future__ import annotations

import hashlib

import numpy as np

#: kind → (width, height, depth or 0 for 2D, faces 6 for cubemaps else 1)
SHAPES = {
    "noise": (256, 256, 0),
    "gradient": (256, 256, 0),
    "cubemap": (128, 128, 0),
    "volume": (32, 32, 32),
    "silence": (512, 2, 0),  # Shadertoy's sound textures: 512 x 2 (spectrum, wave)
    "keyboard": (256, 3, 0),  # Shadertoy's keyboard: 256 keys x (held, pressed, toggled)
    "black": (1, 1, 0),
}


def _rng(kind: str, ref: str | None) -> np.random.Generator:
    digest = hashlib.sha256(f"{kind}:{ref or ''}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Value noise with a few octaves (so mipmapped and blurred reads still vary), RGBA uint8."""
    out = np.zeros((*shape, 4), np.float32)
    weight = 0.0
    for octave, amp in ((8, 0.5), (32, 0.3), (shape[0], 0.2)):
        coarse_shape = tuple(max(1, s * octave // shape[0]) for s in shape)
        coarse = rng.random((*coarse_shape, 4), dtype=np.float32)
        for axis, size in enumerate(shape):
            coarse = np.repeat(coarse, int(np.ceil(size / coarse.shape[axis])), axis=axis)
            coarse = np.take(coarse, np.arange(size), axis=axis)
        out += amp * coarse
        weight += amp
    out /= weight
    out[..., 3] = 1.0
    return (out * 255.0 + 0.5).astype(np.uint8)


def standin_pixels(kind: str, ref: str | None = None) -> np.ndarray:
    """RGBA uint8 pixels for a stand-in: (h, w, 4), (d, h, w, 4) for volumes, (6, h, w, 4) cubemaps."""
    w, h, d = SHAPES.get(kind, SHAPES["black"])
    if kind == "noise":
        return _smooth_noise(_rng(kind, ref), (h, w))
    if kind == "volume":
        return _smooth_noise(_rng(kind, ref), (d, h, w))
    if kind == "cubemap":
        rng = _rng(kind, ref)
        return np.stack([_smooth_noise(rng, (h, w)) for _ in range(6)])
    if kind == "gradient":
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        rgba = np.stack([x / (w - 1), y / (h - 1), 1.0 - x / (w - 1), np.ones_like(x)], axis=-1)
        return (rgba * 255.0 + 0.5).astype(np.uint8)
    return np.zeros((h, w, 4), np.uint8)  # silence, keyboard (no key held), black
