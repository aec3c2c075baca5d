"""Whether the loop guard is on, and whether the driver can report a tripped guard.

The guard itself is a source transform (:mod:`render.dialects.loopguard`); the engine applies it
to every pass when it is on (:class:`render.engine.Engine`).
"""

from __future__ import annotations

import os

from corpus.errors import UsageProblem
from render.dialects.loopguard import REPORT_EXTENSION, guard_loops

#: The environment variable that says whether the loop guard is on: ``auto``, ``on`` or ``off``.
LOOP_GUARD_ENV = "IMAGEPROGRAMS_LOOP_GUARD"
LOOP_GUARD_CHOICES = ("auto", "on", "off")


def loop_guard_choice(value: str | None = None) -> str:
    """``value`` (or ``IMAGEPROGRAMS_LOOP_GUARD``, else ``auto``), checked."""
    choice = (value or os.environ.get(LOOP_GUARD_ENV) or "auto").strip().lower()
    if choice not in LOOP_GUARD_CHOICES:
        raise UsageProblem(
            f"unknown loop guard setting {choice!r}",
            hint=f"give one of {', '.join(LOOP_GUARD_CHOICES)} (--loop-guard or {LOOP_GUARD_ENV})",
        )
    return choice


_PROBE_VERTEX = """\
#version 330 core
void main() { gl_Position = vec4(0.0, 0.0, 0.0, 1.0); }
"""
_PROBE_FRAGMENT = """\
#version 330 core
uniform int n;
layout(location = 0) out vec4 o;
void main() { int i = 0; while (i < n) { i++; } o = vec4(float(i)); }
"""


def guard_can_report(ctx) -> bool:
    """Whether the driver compiles the guard's trip flag (a storage buffer in GLSL 3.30): it must
    list the extension, and a guarded shader must compile (checked once, on a tiny shader)."""
    if REPORT_EXTENSION not in ctx.extensions:
        return False
    try:
        ctx.program(vertex_shader=_PROBE_VERTEX, fragment_shader=guard_loops(_PROBE_FRAGMENT)).release()
    except Exception:  # noqa: BLE001 - moderngl raises a bare Exception with the driver's log
        return False
    return True
