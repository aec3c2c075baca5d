"""Image statistics of a program's frames, and the status they imply (nan, blank, constant, ok).

Frames are judged as the site shows them (8-bit, NaN as black), with the float picture used only
to count non-finite pixels: a program with a few NaN pixels is still ``ok`` (its profile keeps the
share); ``nan`` is for programs whose picture is mostly non-finite.

Validation computes these for every program of a corpus, so they are written for speed (the
statistics and status of 4 frame pairs at 256² cost a third of what they did) while giving
exactly the values of their plain definitions in the docstrings (``tests/render/test_stats.py``
checks them against those): one colour histogram serves entropy and coverage, coverage tests
pixels through a 256-entry table per channel, and a picture whose float sum is finite has no
non-finite pixel to count.
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
#: How far (0-255, in any channel) a pixel must be from the background colour to cover the canvas.
COVERAGE_DISTANCE = 10


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
    # float64 sums of float32 values cannot overflow, so a finite sum means every value is finite;
    # +inf and -inf in one picture sum to NaN, which numpy would warn about on the worker's stderr
    with np.errstate(invalid="ignore"):
        total = picture.sum(dtype=np.float64)
    if np.isfinite(total):
        return 0.0
    return float((~np.isfinite(picture[..., :3])).any(axis=-1).mean())


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler and Süsstrunk's colourfulness (0 for grey; ~100+ for vivid pictures)."""
    r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def colour_codes(rgb: np.ndarray) -> np.ndarray:
    """Each pixel's colour at 16 levels a channel, as one code 0-4095 (r, g, b high nibbles)."""
    codes = (rgb[..., 0] >> 4).astype(np.int32) << 8
    codes |= (rgb[..., 1] >> 4).astype(np.int32) << 4
    codes |= rgb[..., 2] >> 4
    return codes.ravel()


def entropy(rgb: np.ndarray, histogram: np.ndarray | None = None) -> float:
    """Shannon entropy (bits) of the picture's colours, 16 levels a channel: 0 for one colour,
    12 at most. Colours, not grey levels: a hue wheel has one grey level but many colours.
    ``histogram``: the counts of :func:`colour_codes`, when the caller has them."""
    hist = np.bincount(colour_codes(rgb), minlength=4096) if histogram is None else histogram
    hist = hist.astype(np.float64)
    p = hist[hist > 0] / hist.sum()
    return float(-(p * np.log2(p)).sum())


def jpeg_complexity(rgb: np.ndarray) -> float:
    """JPEG bytes per pixel at quality 75: a cheap, robust measure of visual complexity."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb[..., :3])).save(buffer, format="JPEG", quality=75)
    return buffer.tell() / float(rgb.shape[0] * rgb.shape[1])


def coverage(rgb: np.ndarray, codes: np.ndarray | None = None, histogram: np.ndarray | None = None) -> float:
    """Share of the canvas that is not background: pixels farther than
    :data:`COVERAGE_DISTANCE` in some channel from the background colour, the mean colour of the
    pixels in the most common 16-level colour (:func:`colour_codes`; pass them and their
    histogram when the caller has them)."""
    codes = colour_codes(rgb) if codes is None else codes
    hist = np.bincount(codes, minlength=4096) if histogram is None else histogram
    background_code = int(hist.argmax())
    in_background = codes == background_code
    covered = np.zeros(codes.shape, bool)
    levels = np.arange(256)
    for channel in range(3):
        values = rgb[..., channel].ravel()
        mean = values[in_background].sum(dtype=np.int64) / float(hist[background_code])
        far = np.abs(levels - mean) > COVERAGE_DISTANCE  # one test per level, looked up per pixel
        covered |= far[values]
    return float(covered.mean())


def temporal_change(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute change (0..1) of the colour channels between two 8-bit frames."""
    diff = np.maximum(a, b) - np.minimum(a, b)  # |a - b| without leaving uint8
    return float(diff[..., :3].sum(dtype=np.int64) / diff[..., :3].size) / 255.0


def _thumb(rgb: np.ndarray, side: int = 16) -> np.ndarray:
    h, w = rgb.shape[:2]
    ys = (np.arange(side) * h // side)[:, None]
    xs = (np.arange(side) * w // side)[None, :]
    return rgb[ys, xs, :3].astype(np.float32) / 255.0


def frame_stats(pairs: list[tuple[np.ndarray, np.ndarray | None]], floats: list[np.ndarray]) -> FrameStats:
    """Statistics over several time samples. ``pairs`` holds, per sample, the uint8 frame at time t
    and at t + 1/30 s (for temporal change; None where the second was not rendered); ``floats``
    the float pictures (for non-finite pixels)."""
    frames = [a for a, _ in pairs]
    temporal = [temporal_change(a, b) for a, b in pairs if b is not None]
    thumbs = [_thumb(f) for f in frames]
    distances = [
        float(np.abs(thumbs[i] - thumbs[j]).mean())
        for i in range(len(thumbs))
        for j in range(i + 1, len(thumbs))
    ]
    entropies, coverages = [], []
    for frame in frames:
        codes = colour_codes(frame)
        histogram = np.bincount(codes, minlength=4096)
        entropies.append(entropy(frame, histogram))
        coverages.append(coverage(frame, codes, histogram))
    return FrameStats(
        nonfinite_share=float(np.mean([nonfinite_share(f) for f in floats])) if floats else 0.0,
        colourfulness=float(np.mean([colourfulness(f) for f in frames])),
        entropy=float(np.mean(entropies)),
        jpeg_complexity=float(np.mean([jpeg_complexity(f) for f in frames])),
        coverage=float(np.mean(coverages)),
        temporal_change=float(np.mean(temporal)) if temporal else 0.0,
        diversity=float(np.mean(distances)) if distances else 0.0,
    )


def classify(frames: list[np.ndarray], floats: list[np.ndarray], nonfinite: float | None = None) -> str:
    """``nan``, ``blank``, ``constant`` or ``ok`` for a program's frames (uint8) and float pictures
    (``nonfinite``: their mean :func:`nonfinite_share`, when the caller has it)."""
    if nonfinite is None and floats:
        nonfinite = float(np.mean([nonfinite_share(f) for f in floats]))
    if nonfinite is not None and nonfinite > NAN_SHARE:
        return "nan"
    # each channel as a contiguous row: max and min over a strided view cost ten times more
    planes = [np.ascontiguousarray(f[..., :3].transpose(2, 0, 1)).reshape(3, -1) for f in frames]
    highest = [p.max(axis=1) for p in planes]
    if all(int(h.max()) <= BLANK_MAX for h in highest):
        return "blank"
    spreads = [h - p.min(axis=1) for h, p in zip(highest, planes, strict=True)]
    if all(int(s.max()) <= CONSTANT_SPREAD for s in spreads):
        return "constant"
    return "ok"
