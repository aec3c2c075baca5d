"""Whole-shader dialects: GLSL Sandbox, plain GLSL from repositories, ISF and gl-transitions.

Their code has its own ``main()`` (gl-transitions: a ``transition(uv)`` function) and names its
uniforms itself, so the plan maps each declared uniform to what it means by name: GLSL Sandbox's
``time mouse resolution surfaceSize backbuffer``, ISF's ``TIME RENDERSIZE …`` and its declared
inputs at their defaults, and for plain GLSL the conventions real repositories use (``u_time``,
``iTime``, ``time``; ``u_resolution`` …). Code that declares a desktop ``#version`` of 3.30 or
later is compiled as written; older or WebGL code is translated (:mod:`render.dialects.translate`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from render.dialects.plan import Binding, PassPlan, Plan, vertex_for
from render.dialects.translate import (
    DESKTOP_HEADER,
    ES1_TEXTURE_HELPERS,
    desktop_body,
    es1_output,
    is_es1,
    uniform_names,
    uses,
)
from render.dialects.webgl import as_in_a_browser
from render.program import RenderProgram

SANDBOX_UNIFORMS = {
    "time": "time",
    "mouse": "mouse-normalised",
    "resolution": "resolution",
    "surfaceSize": "surfacesize",
}
ISF_UNIFORMS = {
    "TIME": "time",
    "TIMEDELTA": "timedelta",
    "RENDERSIZE": "resolution",
    "FRAMEINDEX": "frame",
    "DATE": "date",
    "PASSINDEX": "zero",
}
#: Plain GLSL: lower-cased name without a ``u_``/``u``/``i`` prefix → meaning.
_PLAIN_NAMES = {
    "time": "time",
    "globaltime": "time",
    "seconds": "time",
    "resolution": "resolution",
    "res": "resolution",
    "rendersize": "resolution",
    "viewport": "resolution",
    "mouse": "mouse-pixels",
    "frame": "frame",
    "framecount": "frame",
    "timedelta": "timedelta",
    "delta": "timedelta",
    "date": "date",
}
_DESKTOP_VERSION = re.compile(r"^[ \t]*#[ \t]*version[ \t]+(\d+)(?:[ \t]+(\w+))?", re.M)
_ISF_HEADER = re.compile(r"^\s*/\*\s*(\{.*?\})\s*\*/", re.S)

ISF_BUILTINS = """\
uniform float TIME;
uniform float TIMEDELTA;
uniform vec2 RENDERSIZE;
uniform int FRAMEINDEX;
uniform vec4 DATE;
uniform int PASSINDEX;
"""
ISF_HELPERS = """\
in vec2 isf_FragNormCoord;
#define IMG_NORM_PIXEL(img, p) texture(img, p)
#define IMG_PIXEL(img, p) texture(img, (p) / vec2(textureSize(img, 0)))
#define IMG_THIS_NORM_PIXEL(img) texture(img, isf_FragNormCoord)
#define IMG_THIS_PIXEL(img) texture(img, isf_FragNormCoord)
#define IMG_SIZE(img) vec2(textureSize(img, 0))
"""

#: Two procedural pictures stand in for gl-transitions' from and to images.
TRANSITION_HELPERS = """\
uniform float progress;
uniform float ratio;
uniform vec2 _ip_resolution;
vec4 getFromColor(vec2 uv) {
    vec2 c = floor(uv * 8.0);
    float k = mod(c.x + c.y, 2.0);
    return vec4(mix(vec3(0.95, 0.55, 0.15), vec3(0.15, 0.25, 0.65), k) * (0.6 + 0.4 * uv.y), 1.0);
}
vec4 getToColor(vec2 uv) {
    float r = length(uv - 0.5);
    return vec4(0.5 + 0.5 * cos(r * 18.0 + vec3(0.0, 2.1, 4.2)), 1.0);
}
"""


def _translated(code: str, *, webgl: bool = False) -> tuple[str, str]:
    """(header, body) for whole-shader code: desktop ≥ 3.30 as written (its ``#version`` line
    becomes the header), anything else translated, and adapted as a browser runs it where it
    comes from ``webgl`` (:mod:`render.dialects.webgl`). The body starts with a ``#line``
    directive so the driver's log numbers lines as the user's file does."""
    version = _DESKTOP_VERSION.search(code)
    if version and int(version.group(1)) >= 330 and (version.group(2) or "core") != "es":
        before, after = code[: version.start()], code[version.end() :]
        line = before.count("\n") + 1  # `after` starts with the end of the #version line
        return version.group(0) + "\n", f"#line {line} 0\n" + after.replace("#include", "# include")
    es1 = is_es1(code)
    body = desktop_body(code, es1=es1)
    header = DESKTOP_HEADER
    if webgl:
        (body,), browser = as_in_a_browser([body], es1=es1)
        header += browser
    if es1 or not re.search(r"\bout\s+(?:(?:lowp|mediump|highp)\s+)?vec4\b", body):
        body, outputs = es1_output(body)
        header += outputs
    return header, "#line 1 0\n" + body


def _pass(plan: Plan, fragment: str, uniforms: dict[str, str], **kw: Any) -> Plan:
    plan.passes.append(PassPlan("Image", fragment, vertex_for(fragment), uniforms=uniforms, **kw))
    return plan


def _code(program: RenderProgram) -> str:
    images = program.pass_of_type("image") or list(program.passes)
    return images[0].code if images else ""


def plan_glslsandbox(program: RenderProgram) -> Plan:
    plan = Plan(program.dialect)
    header, body = _translated(_code(program), webgl=True)
    fragment = header + body + "\n"
    declared = uniform_names(fragment)
    bindings = [Binding("backbuffer", "feedback", "0")] if "backbuffer" in declared else []
    return _pass(plan, fragment, dict(SANDBOX_UNIFORMS), bindings=bindings)


def _plain_semantic(name: str) -> str | None:
    key = name.lower()
    for prefix in ("u_", "u", "i", "g_"):
        if key.startswith(prefix) and key[len(prefix) :] in _PLAIN_NAMES:
            return _PLAIN_NAMES[key[len(prefix) :]]
    return _PLAIN_NAMES.get(key)


def plan_glsl(program: RenderProgram) -> Plan:
    code = _code(program)
    if uses(code, "mainImage") and not re.search(r"\bvoid\s+main\s*\(", code):
        from render.dialects.shadertoy import plan_shadertoy

        plan = plan_shadertoy(program)
        plan.notes.append("plain GLSL file with mainImage: rendered as Shadertoy code")
        return plan
    plan = Plan(program.dialect)
    header, body = _translated(code)
    fragment = header + body + "\n"
    uniforms: dict[str, str] = {}
    bindings = []
    for name, glsl_type in uniform_names(fragment).items():
        if glsl_type.startswith("sampler"):
            kind = {"samplerCube": "cubemap", "sampler3D": "volume"}.get(glsl_type, "noise")
            bindings.append(Binding(name, kind))
            plan.standins.append({"pass": "Image", "uniform": name, "kind": glsl_type, "standin": kind})
        elif name == "iMouse":
            uniforms[name] = "mouse-shadertoy"
        elif semantic := _plain_semantic(name):
            uniforms[name] = semantic
    return _pass(plan, fragment, uniforms, bindings=bindings)


def plan_isf(program: RenderProgram) -> Plan:
    plan = Plan(program.dialect)
    code = _code(program)
    meta: dict[str, Any] = {}
    header_match = _ISF_HEADER.match(code)
    if header_match:
        try:
            meta = json.loads(header_match.group(1))
        except ValueError as exc:
            plan.unsupported = f"ISF header is not valid JSON: {exc}"
            return plan
        code = code[header_match.end() :]
    if len(meta.get("PASSES") or []) > 1:
        plan.unsupported = "multi-pass ISF (PASSES) is not supported yet"
        return plan
    declarations, constants, bindings = [], {}, []
    for item in meta.get("INPUTS") or []:
        if not isinstance(item, dict) or not isinstance(item.get("NAME"), str):
            continue
        name, kind = item["NAME"], str(item.get("TYPE", "float"))
        glsl, value = _isf_input(kind, item.get("DEFAULT"))
        declarations.append(f"uniform {glsl} {name};\n")
        if glsl == "sampler2D":
            standin = "silence" if kind.startswith("audio") else "noise"
            bindings.append(Binding(name, standin))
            plan.standins.append({"pass": "Image", "uniform": name, "kind": kind, "standin": standin})
        else:
            constants[name] = value
    header, body = _translated(code)
    fragment = header + ISF_BUILTINS + "".join(declarations) + ISF_HELPERS + body + "\n"
    return _pass(plan, fragment, dict(ISF_UNIFORMS), constants=constants, bindings=bindings)


def _isf_input(kind: str, default: Any) -> tuple[str, Any]:
    """The GLSL type of an ISF input and the value it keeps (its DEFAULT, or a neutral one)."""

    def numbers(n: int, fallback: list[float]) -> tuple[float, ...]:
        if isinstance(default, list) and len(default) >= n:
            try:
                return tuple(float(x) for x in default[:n])
            except (TypeError, ValueError):
                pass
        return tuple(fallback)

    if kind == "color":
        return "vec4", numbers(4, [1.0, 1.0, 1.0, 1.0])
    if kind == "point2D":
        return "vec2", numbers(2, [0.0, 0.0])
    if kind in ("bool", "event"):
        return "bool", bool(default)
    if kind == "long":
        try:
            return "int", int(default or 0)
        except (TypeError, ValueError):
            return "int", 0
    if kind in ("image", "audio", "audioFFT"):
        return "sampler2D", None
    try:
        return "float", float(default if default is not None else 0.0)
    except (TypeError, ValueError):
        return "float", 0.0


_TRANSITION_PARAM = re.compile(r"\buniform\s+(\w+)\s+(\w+)\s*;[ \t]*//[ \t]*=[ \t]*([^\n]+)")


def plan_gltransition(program: RenderProgram) -> Plan:
    plan = Plan(program.dialect)
    code = _code(program)
    (body,), browser = as_in_a_browser([desktop_body(code, es1=True)], es1=True)
    constants: dict[str, Any] = {}
    for glsl_type, name, default in _TRANSITION_PARAM.findall(code):
        inside = default.split("(", 1)[1] if "(" in default else default  # vec2(0.5, 0.5) → 0.5, 0.5
        values = [float(x) for x in re.findall(r"-?\d+\.?\d*(?:[eE][-+]?\d+)?", inside)]
        if default.strip().startswith(("true", "false")):
            constants[name] = default.strip().startswith("true")
        elif values:
            constants[name] = (
                int(values[0])
                if glsl_type == "int"
                else (values[0] if glsl_type == "float" else tuple(values))
            )
    plan.standins.append({"pass": "Image", "kind": "from/to images", "standin": "procedural"})
    fragment = (
        DESKTOP_HEADER
        + browser
        + "layout(location = 0) out vec4 _ip_FragColor;\n"
        + ES1_TEXTURE_HELPERS
        + TRANSITION_HELPERS
        + "#line 1 0\n"
        + body
        + "\nvoid main() {\n    _ip_FragColor = transition(gl_FragCoord.xy / _ip_resolution);\n}\n"
    )
    uniforms = {"progress": "progress", "ratio": "ratio", "_ip_resolution": "resolution"}
    return _pass(plan, fragment, uniforms, constants=constants)
