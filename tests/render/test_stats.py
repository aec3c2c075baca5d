"""Image statistics: the fast implementations give exactly the values of their plain definitions."""

from __future__ import annotations

import io

import numpy as np
import pytest

from render import stats


def plain_entropy(rgb: np.ndarray) -> float:
    q = (rgb[..., :3] >> 4).astype(np.int32)
    codes = (q[..., 0] << 8) | (q[..., 1] << 4) | q[..., 2]
    hist = np.bincount(codes.ravel(), minlength=4096).astype(np.float64)
    p = hist[hist > 0] / hist.sum()
    return float(-(p * np.log2(p)).sum())


def plain_coverage(rgb: np.ndarray) -> float:
    flat = rgb[..., :3].reshape(-1, 3).astype(np.int16)
    quantised = (flat // 16).astype(np.int32)
    codes = quantised[:, 0] * 256 + quantised[:, 1] * 16 + quantised[:, 2]
    background = flat[codes == np.bincount(codes).argmax()].mean(axis=0)
    return float((np.abs(flat - background).max(axis=1) > 10).mean())


def plain_nonfinite_share(picture: np.ndarray) -> float:
    return float((~np.isfinite(picture[..., :3])).any(axis=-1).mean())


def plain_temporal_change(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a[..., :3].astype(np.int16) - b[..., :3]).mean() / 255.0)


def plain_classify(frames: list[np.ndarray], floats: list[np.ndarray]) -> str:
    if floats and np.mean([plain_nonfinite_share(f) for f in floats]) > stats.NAN_SHARE:
        return "nan"
    rgb = [f[..., :3].reshape(-1, 3) for f in frames]
    if all(int(f.max()) <= stats.BLANK_MAX for f in rgb):
        return "blank"
    if all(int((f.max(axis=0) - f.min(axis=0)).max()) <= stats.CONSTANT_SPREAD for f in rgb):
        return "constant"
    return "ok"


def pictures(seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(8-bit frame, float picture) pairs of every kind the statuses tell apart, at odd sizes."""
    rng = np.random.default_rng(seed)
    out = []
    y, x = np.mgrid[0:96, 0:80]
    gradient = np.stack([x * 3 % 256, y * 2 % 256, (x * y >> 5) % 256, np.full_like(x, 255)], -1)
    out.append(gradient.astype(np.uint8))
    for k in range(60):
        h, w = (int(v) for v in rng.integers(1, 70, 2))
        picture = np.full((h, w, 4), rng.integers(0, 256, 4), np.uint8)  # one colour
        if k % 3:
            picture[: rng.integers(0, h + 1)] = rng.integers(0, 4 if k % 2 else 256, 4)  # two bands
        if k % 5 == 0:
            picture = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)  # noise
        if k % 7 == 0:
            picture = rng.integers(0, 3, (h, w, 4), dtype=np.uint8)  # nearly black
        out.append(picture)
    pairs = []
    for k, picture in enumerate(out):
        floats = picture.astype(np.float32) / 255.0
        if k % 4 == 0:
            floats[: max(1, picture.shape[0] * (k % 9) // 8)] = np.nan
        if k % 6 == 0:
            floats[..., 3] = np.inf  # alpha is not shown: not counted
        if k % 10 == 1:
            floats[0, 0, 1] = -np.inf
        pairs.append((picture, floats))
    return pairs


def test_fast_statistics_equal_their_plain_definitions_exactly():
    cases = pictures()
    for picture, floats in cases:
        assert stats.entropy(picture) == plain_entropy(picture)
        assert stats.coverage(picture) == plain_coverage(picture)
        assert stats.nonfinite_share(floats) == plain_nonfinite_share(floats)
        shifted = np.roll(picture, 3, axis=1)
        assert stats.temporal_change(picture, shifted) == plain_temporal_change(picture, shifted)
        assert stats.classify([picture], [floats]) == plain_classify([picture], [floats])
    found = {stats.classify([p], [f]) for p, f in cases}
    assert found == {"ok", "blank", "constant", "nan"}  # the cases reach every status


def test_frame_stats_takes_pairs_whose_second_frame_was_not_drawn():
    (a, fa), (b, fb), (c, fc) = pictures(1)[1:4]
    same = [(x[:8, :8], y[:8, :8]) for x, y in ((a, b), (b, c))]
    full = stats.frame_stats([same[0], (same[1][0], None)], [fa[:8, :8], fb[:8, :8]])
    assert full.temporal_change == pytest.approx(plain_temporal_change(*same[0]))  # the one pair only
    assert stats.frame_stats([(same[0][0], None)], [fa]).temporal_change == 0.0


def test_classify_uses_a_non_finite_share_the_caller_already_has():
    picture = np.full((4, 4, 4), 128, np.uint8)
    picture[0, 0] = 0
    floats = picture.astype(np.float32)
    assert stats.classify([picture], [floats]) == "ok"
    assert stats.classify([picture], [floats], nonfinite=0.9) == "nan"


def test_jpeg_complexity_is_bytes_per_pixel_of_a_quality_75_jpeg():
    from PIL import Image

    picture = pictures()[0][0]
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(picture[..., :3])).save(buffer, format="JPEG", quality=75)
    assert stats.jpeg_complexity(picture) == buffer.tell() / (96 * 80)


def test_a_picture_with_both_infinities_is_counted_without_a_numpy_warning():
    """+inf and -inf sum to NaN: numpy's "invalid value" warning went to the validator's terminal
    once for every such program."""
    import warnings

    picture = np.zeros((4, 4, 4), np.float32)
    picture[0, 0, 0], picture[1, 1, 1] = np.inf, -np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert stats.nonfinite_share(picture) == 2 / 16
