"""Dialects: a program's stored passes → complete desktop GLSL plus a plan to feed it.

One function per family; :func:`build_plan` picks by the program's ``dialect``.
"""

from __future__ import annotations

from collections.abc import Callable

from render.dialects.plain import plan_glsl, plan_glslsandbox, plan_gltransition, plan_isf
from render.dialects.plan import Binding, PassPlan, Plan
from render.dialects.shadertoy import plan_shadertoy
from render.dialects.twigl import plan_twigl
from render.program import RenderProgram

PLANNERS: dict[str, Callable[[RenderProgram], Plan]] = {
    "shadertoy": plan_shadertoy,
    "glslsandbox": plan_glslsandbox,
    "glsl": plan_glsl,
    "isf": plan_isf,
    "gl-transition": plan_gltransition,
}


def build_plan(program: RenderProgram) -> Plan:
    """The plan for ``program``; ``plan.unsupported`` says why when it cannot be drawn."""
    if program.dialect.startswith("twigl-"):
        return plan_twigl(program)
    planner = PLANNERS.get(program.dialect)
    if planner is None:
        plan = Plan(program.dialect)
        plan.unsupported = f"unknown dialect {program.dialect!r}"
        return plan
    return planner(program)


__all__ = ["Binding", "PassPlan", "Plan", "build_plan"]
