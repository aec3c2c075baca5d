"""Image statistics of a program's frames, and the status they imply (nan, blank, constant, ok).

Frames are judged as the site shows them (8-bit, NaN as black), with the float picture used only
to count non-finite pixels: a program with a few NaN pixels is still ``ok`` (its profile keeps the
share); ``nan`` is for programs whose picture is mostly non-finite.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

#: Share of non-finite pixels above which a program is ``nan``.
NAN_SHARE = 0.5
#: Largest channel value (0-255) a ``blank`` picture may reach anywhere.
BLANK_MAX = 2
#: Largest spread (max - min, 0-255, per channel) of a picture that is one colour.
CONSTANT_SPREAD = 2


@dataclass
class FrameStats:
    nonfinite_share: float
    colourfulness: float
    entropy: float
    jpeg_complexity: float
    coverage: float
    temporal_change: float
    diversity: float

    def to_json(self) -> dict[str, float]:
        return {k: round(float(v), 6) for k, v in self.__dict__.items()}


def nonfinite_share(picture: np.ndarray) -> float:
    """Share of pixels with a non-finite colour channel (alpha is not shown, so not counted)."""
    return float((~np.isfinite(picture[..., :3])).any(axis=-1).mean())


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler and Süsstrunk's colourfulness (0 for grey; ~100+ for vivid pictures)."""
    r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def entropy(rgb: np.ndarray) -> float:
    """Shannon entropy (bits) of the picture's colours, 16 levels a channel: 0 for one colour,
    12 at most. Colours, not grey levels: a hue wheel has one grey level but many colours."""
    q = (rgb[..., :3] >> 4).astype(np.int32)
    codes = (q[..., 0] << 8) | (q[..., 1] << 4) | q[..., 2]
    hist = np.bincount(codes.ravel(), minlength=4096).astype(np.float64)
    p = hist[hist > 0] / hist.sum()
    return float(-(p * np.log2(p)).sum())


def jpeg_complexity(rgb: np.ndarray) -> float:
    """JPEG bytes per pixel at quality 75: a cheap, robust measure of visual complexity."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb[..., :3])).save(buffer, format="JPEG", quality=75)
    return buffer.tell() / float(rgb.shape[0] * rgb.shape[1])


def coverage(rgb: np.ndarray) -> float:
    """Share of the canvas that is not background (the picture's most common colour ± 10)."""
    flat = rgb[..., :3].reshape(-1, 3).astype(np.int16)
    quantised = (flat // 16).astype(np.int32)
    codes = quantised[:, 0] * 256 + quantised[:, 1] * 16 + quantised[:, 2]
    background_code = np.bincount(codes).argmax()
    background = flat[codes == background_code].mean(axis=0)
    return float((np.abs(flat - background).max(axis=1) > 10).mean())


def _thumb(rgb: np.ndarray, side: int = 16) -> np.ndarray:
    h, w = rgb.shape[:2]
    ys = (np.arange(side) * h // side)[:, None]
    xs = (np.arange(side) * w // side)[None, :]
    return rgb[ys, xs, :3].astype(np.float32) / 255.0


def frame_stats(pairs: list[tuple[np.ndarray, np.ndarray]], floats: list[np.ndarray]) -> FrameStats:
    """Statistics over several time samples. ``pairs`` holds, per sample, the uint8 frame at time t
    and at t + 1/30 s (for temporal change); ``floats`` the float pictures (for non-finite pixels)."""
    frames = [a for a, _ in pairs]
    temporal = [np.abs(a[..., :3].astype(np.int16) - b[..., :3]).mean() / 255.0 for a, b in pairs]
    thumbs = [_thumb(f) for f in frames]
    distances = [
        float(np.abs(thumbs[i] - thumbs[j]).mean())
        for i in range(len(thumbs))
        for j in range(i + 1, len(thumbs))
    ]
    return FrameStats(
        nonfinite_share=float(np.mean([nonfinite_share(f) for f in floats])) if floats else 0.0,
        colourfulness=float(np.mean([colourfulness(f) for f in frames])),
        entropy=float(np.mean([entropy(f) for f in frames])),
        jpeg_complexity=float(np.mean([jpeg_complexity(f) for f in frames])),
        coverage=float(np.mean([coverage(f) for f in frames])),
        temporal_change=float(np.mean(temporal)),
        diversity=float(np.mean(distances)) if distances else 0.0,
    )


def classify(frames: list[np.ndarray], floats: list[np.ndarray]) -> str:
    """``nan``, ``blank``, ``constant`` or ``ok`` for a program's frames (uint8) and float pictures."""
    if floats and np.mean([nonfinite_share(f) for f in floats]) > NAN_SHARE:
        return "nan"
    rgb = [f[..., :3] for f in frames]
    if all(int(f.max()) <= BLANK_MAX for f in rgb):
        return "blank"
    if all(
        int((f.reshape(-1, 3).max(axis=0) - f.reshape(-1, 3).min(axis=0)).max()) <= CONSTANT_SPREAD
        for f in rgb
    ):
        return "constant"
    return "ok"
