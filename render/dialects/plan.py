"""What a dialect hands the engine: complete shaders and how to feed them.

A :class:`Plan` is plain data (no OpenGL), so dialects are tested without a context and the same
plan serves validation, profiling, frames and pretraining.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

#: What a uniform is fed with. The engine computes each per frame and adapts it to the
#: uniform's declared type (``iResolution`` is a vec3, twigl's ``r`` a vec2, ``iFrame`` an int …).
SEMANTICS = (
    "time",
    "timedelta",
    "frame",
    "framerate",
    "resolution",
    "mouse-shadertoy",  # vec4(0): no button held, as a page that was never clicked
    "mouse-normalised",  # centre of the canvas in 0..1 (twigl, GLSL Sandbox)
    "mouse-pixels",  # centre of the canvas in pixels (plain GLSL conventions)
    "date",
    "samplerate",
    "channeltime",
    "channelresolution",
    "surfacesize",
    "progress",  # gl-transitions: 0 → 1 → 0 every 4 s
    "ratio",
    "zero",
)


@dataclass(frozen=True)
class Binding:
    """A sampler uniform of a pass and what is bound to it.

    ``kind``: ``buffer`` (another pass's latest output, ``ref`` its name), ``feedback`` (this
    program's previous displayed frame, target ``ref`` "0"/"1"), or a stand-in texture kind
    (``noise``, ``cubemap``, ``volume``, ``silence``, ``keyboard``, ``gradient``, ``black``).
    """

    uniform: str
    kind: str
    ref: str | None = None
    sampler: dict[str, str] = field(default_factory=dict)
    channel: int | None = None


@dataclass
class PassPlan:
    """One render pass: its complete shaders, the uniforms it reads and its sampler bindings."""

    name: str  # "Image", "Buffer A", "main"
    fragment: str
    vertex: str
    outputs: int = 1  # colour targets it writes (2 for twigl's MRT modes)
    is_image: bool = True  # whether its target 0 is the picture we show
    uniforms: dict[str, str] = field(default_factory=dict)  # name → semantic
    constants: dict[str, Any] = field(default_factory=dict)  # name → fixed value (ISF, gl-transitions)
    bindings: list[Binding] = field(default_factory=list)


@dataclass
class Plan:
    """Every pass in the order one frame renders them (buffers first, the image last)."""

    dialect: str
    passes: list[PassPlan] = field(default_factory=list)
    standins: list[dict[str, Any]] = field(default_factory=list)
    unsupported: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def image(self) -> PassPlan:
        return self.passes[-1]

    def feedback_targets(self) -> int:
        """How many of the image's targets are read back next frame (twigl/Sandbox backbuffers)."""
        wanted = [int(b.ref or 0) + 1 for p in self.passes for b in p.bindings if b.kind == "feedback"]
        return max(wanted, default=0)


#: The vertex shader every pass uses: one triangle covering the viewport, no vertex buffer.
#: Varyings the fragment code expects (GLSL Sandbox's ``surfacePosition``, ISF's
#: ``isf_FragNormCoord``, a plain shader's ``vUv`` …) are generated to match by :func:`vertex_for`.
_VERTEX_HEAD = """\
#version 330 core
uniform vec2 _ip_surface;
"""
_VERTEX_MAIN = """\
void main() {
    vec2 p = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2)) * 2.0 - 1.0;
    vec2 uv = p * 0.5 + 0.5;
    gl_Position = vec4(p, 0.0, 1.0);
"""
_FRAGMENT_IN = re.compile(
    r"(?:^|[;}])\s*(?:(?:smooth|flat|noperspective|centroid)\s+)*in\s+(?:(?:lowp|mediump|highp)\s+)?"
    r"(float|vec2|vec3|vec4)\s+(\w+)\s*;",
    re.M,
)
_FILL = {"float": "uv.x", "vec2": "uv", "vec3": "vec3(uv, 0.0)", "vec4": "vec4(uv, 0.0, 1.0)"}


def fragment_inputs(fragment: str) -> dict[str, str]:
    """``{name: type}`` of the ``in`` variables the fragment declares (``gl_`` ones left out)."""
    found: dict[str, str] = {}
    for m in _FRAGMENT_IN.finditer(fragment):
        if not m.group(2).startswith("gl_"):
            found.setdefault(m.group(2), m.group(1))
    return found


def vertex_for(fragment: str) -> str:
    """A vertex shader that feeds every ``in`` the fragment declares: texture coordinates in
    0..1 (``surfacePosition`` gets GLSL Sandbox's centred surface coordinates)."""
    outs, sets = [], []
    for name, kind in fragment_inputs(fragment).items():
        outs.append(f"out {kind} {name};\n")
        value = "p * 0.5 * _ip_surface" if name == "surfacePosition" and kind == "vec2" else _FILL[kind]
        sets.append(f"    {name} = {value};\n")
    return _VERTEX_HEAD + "".join(outs) + _VERTEX_MAIN + "".join(sets) + "}\n"
