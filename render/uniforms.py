"""Uniform values: what a program's inputs (time, resolution, mouse, ...) hold at one frame, and
each value shaped to the type its uniform declares (programs of different sites declare the same
input as vec2 or vec3, int or float, array or not)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

GL_FLOAT = 0x1406
GL_INT = 0x1404


def size_values(size: tuple[int, int]) -> dict[str, Any]:
    """Uniform values that are the same for every frame at one size."""
    w, h = size
    return {
        "resolution": (float(w), float(h), 1.0),
        "mouse-shadertoy": (0.0, 0.0, 0.0, 0.0),
        "mouse-normalised": (0.5, 0.5),
        "mouse-pixels": (w / 2.0, h / 2.0),
        "samplerate": 44100.0,
        "surfacesize": (w / h, 1.0),
        "ratio": w / h,
        "zero": 0,
    }


def frame_values(values: dict[str, Any], t: float, frame: int, dt: float) -> None:
    """Write the values that change from frame to frame into ``values``."""
    values["time"], values["frame"] = t, frame
    values["timedelta"], values["framerate"] = dt, 1.0 / dt
    values["channeltime"] = [t] * 4
    # a fixed day, so frames depend on the time asked for and nothing else
    values["date"] = (2024.0, 0.0, 1.0, 43200.0 + t)
    values["progress"] = 0.5 - 0.5 * math.cos(math.pi * t / 2.0)


def adapt(value: Any, uniform) -> Any:
    """Shape a semantic value to the uniform's declared type (vec2 vs vec3, int vs float, arrays)."""
    n, count = uniform.dimension, uniform.array_length
    integer = uniform.fmt[-1] in "iuI" and uniform.gl_type != 35670  # bool is set as int too
    boolean = uniform.gl_type == 35670

    def one(v: Any) -> Any:
        seq = tuple(v) if isinstance(v, (tuple, list)) else (v,)
        seq = (seq + (0,) * n)[:n]
        if boolean:
            seq = tuple(bool(x) for x in seq)
        else:
            seq = tuple(int(x) if integer else float(x) for x in seq)
        return seq[0] if n == 1 else seq

    if count > 1:
        items = list(value) if isinstance(value, list) else [value] * count
        items = (items + [items[-1]] * count)[:count]
        return [one(v) for v in items]
    return one(value[0] if isinstance(value, list) else value)


def adapter(uniform) -> Callable[[Any], Any]:
    """:func:`adapt` for one uniform, with the common scalar cases (time, frame) made cheap."""
    if uniform.dimension == 1 and uniform.array_length == 1 and uniform.gl_type in (GL_FLOAT, GL_INT):
        scalar = float if uniform.gl_type == GL_FLOAT else int
        return lambda value: scalar(value[0] if isinstance(value, (list, tuple)) else value)
    return lambda value: adapt(value, uniform)
