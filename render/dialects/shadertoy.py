"""Shadertoy: ``mainImage(out vec4, in vec2)`` passes, the Common pass, Buffers A-D with feedback.

Buffers render in the site's order (A, B, C, D) before the Image pass, each to a float texture;
a buffer that reads itself, or a buffer later in the order, gets the previous frame's output
(ping-pong), one earlier in the order this frame's, as on the site. Sound passes draw nothing
and are skipped; a program with no Image pass is ``unsupported``. Cube A passes are not
rendered: what reads them gets a procedural cubemap, recorded as a stand-in.
"""

from __future__ import annotations

import re

from render.dialects.plan import Binding, PassPlan, Plan, vertex_for
from render.dialects.translate import DESKTOP_HEADER, declares_uniform, desktop_body, es1_output, uses
from render.dialects.webgl import as_in_a_browser, drop_conditional_uniforms
from render.program import RenderPassSource, RenderProgram

UNIFORMS = {
    "iResolution": ("vec3", "resolution"),
    "iTime": ("float", "time"),
    "iTimeDelta": ("float", "timedelta"),
    "iFrame": ("int", "frame"),
    "iFrameRate": ("float", "framerate"),
    "iChannelTime": ("float[4]", "channeltime"),
    "iChannelResolution": ("vec3[4]", "channelresolution"),
    "iMouse": ("vec4", "mouse-shadertoy"),
    "iDate": ("vec4", "date"),
    "iSampleRate": ("float", "samplerate"),
    "iGlobalTime": ("float", "time"),  # the pre-2015 name, still in old dumps
}
BUFFER_ORDER = ("Buffer A", "Buffer B", "Buffer C", "Buffer D")

#: Input kind → the stand-in bound in its place, and its GLSL sampler type.
STANDINS = {
    "texture": ("noise", "sampler2D"),
    "video": ("noise", "sampler2D"),
    "webcam": ("gradient", "sampler2D"),
    "cubemap": ("cubemap", "samplerCube"),
    "volume": ("volume", "sampler3D"),
    "music": ("silence", "sampler2D"),
    "musicstream": ("silence", "sampler2D"),
    "mic": ("silence", "sampler2D"),
    "keyboard": ("keyboard", "sampler2D"),
}

_WRAPPER_MAIN = """\
void main() {
    vec4 c = vec4(0.0);
    mainImage(c, gl_FragCoord.xy);
    _ip_out = c;
}
"""
_OUT_SIGNATURE = re.compile(r"(\bvoid\s+mainImage\s*\(\s*)out\b")
_INOUT_SIGNATURE = re.compile(r"\bvoid\s+mainImage\s*\(\s*inout\b")
_DIRECTIVE = re.compile(r"^[ \t]*#(?:\\\r?\n|[^\n])*", re.M)  # with its continuation lines


def _main_in_a_macro(code: str) -> bool:
    """Whether a ``#define`` names mainImage (``#define mainImage mainImage0(…)`` to supersample,
    ``#define M void mainImage(out vec4 O, vec2 u) …``): then the program declares it with the
    qualifiers it chose in places our rewrite cannot reach, and we follow them."""
    return "mainImage" in code and any("mainImage" in m.group() for m in _DIRECTIVE.finditer(code))


def plan_shadertoy(program: RenderProgram) -> Plan:
    plan = Plan(program.dialect)
    images = program.pass_of_type("image")
    if not images:
        kinds = ", ".join(sorted({p.type for p in program.passes})) or "none"
        plan.unsupported = f"no Image pass to draw (passes: {kinds})"
        return plan
    common = "\n".join(p.code for p in program.pass_of_type("common"))
    buffers = {p.name: p for p in program.pass_of_type("buffer") if p.name in BUFFER_ORDER}
    for name in BUFFER_ORDER:
        if name in buffers:
            plan.passes.append(_pass(plan, buffers[name], common, set(buffers), is_image=False))
    plan.passes.append(_pass(plan, images[0], common, set(buffers), is_image=True))
    if program.pass_of_type("cubemap"):
        plan.notes.append("Cube A pass not rendered: inputs reading it get a procedural cubemap")
    if program.pass_of_type("sound"):
        plan.notes.append("Sound pass skipped: it draws nothing")
    return plan


def _pass(
    plan: Plan, source: RenderPassSource, common: str, buffers: set[str], *, is_image: bool
) -> PassPlan:
    code = source.code
    legacy = not uses(code, "mainImage") and uses(code, "main")
    es1 = legacy  # pre-2015 Shadertoy code: WebGL 1 with gl_FragColor
    body = desktop_body(code, es1=es1)
    common_body = desktop_body(common, es1=es1) if common else ""
    # The site's header declares every uniform: a program's own declarations of them that it
    # compiled sit in branches it never took (`#ifndef HW_PERFORMANCE`). A plain GLSL file
    # drawn as Shadertoy code (dialect "glsl") is not from the site: its declarations count.
    browser = ""
    if plan.dialect == "shadertoy":
        ours = {*UNIFORMS, *(f"iChannel{c}" for c in range(4))}
        common_body, body = (drop_conditional_uniforms(b, ours) for b in (common_body, body))
        (common_body, body), browser = as_in_a_browser([common_body, body], es1=es1, shadertoy=True)
    user_code = common_body + "\n" + body
    bindings, sampler_decls = [], []
    by_channel = {int(i.get("channel", 0)): i for i in source.inputs}
    for channel in range(4):
        uniform = f"iChannel{channel}"
        binding, glsl_type = _binding(plan, source.name, uniform, channel, by_channel.get(channel), buffers)
        bindings.append(binding)
        if not declares_uniform(user_code, uniform):
            sampler_decls.append(f"uniform {glsl_type} {uniform};\n")
    decls = "".join(
        f"uniform {t.split('[')[0]} {n}{'[4]' if '[' in t else ''};\n"
        for n, (t, _) in UNIFORMS.items()
        if not declares_uniform(user_code, n) and (n != "iGlobalTime" or uses(code + common, n))
    )
    parts = [DESKTOP_HEADER, browser, decls, "".join(sampler_decls)]
    if legacy:
        body, outputs = es1_output(body)
        parts.append(outputs)
    else:
        inout = bool(_OUT_SIGNATURE.search(body) or _INOUT_SIGNATURE.search(body))
        if _main_in_a_macro(common_body + "\n" + body):
            inout = False
        else:  # Real code often does `fragColor += …` on an `out` it never set: inout, zeroed.
            body = _OUT_SIGNATURE.sub(r"\1inout", body)
        qualifier = "inout" if inout else "out"
        parts += [
            "layout(location = 0) out vec4 _ip_out;\n",
            f"void mainImage({qualifier} vec4 c, in vec2 f);\n",
            # main comes before the user's code so `#define gl_FragCoord fragCoord` cannot touch it.
            _WRAPPER_MAIN,
        ]
    if common_body:
        parts += ["#line 1 1\n", common_body, "\n"]
    parts += ["#line 1 0\n", body, "\n"]
    fragment = "".join(parts)
    return PassPlan(
        name=source.name,
        fragment=fragment,
        vertex=vertex_for(fragment),
        is_image=is_image,
        uniforms={n: sem for n, (_, sem) in UNIFORMS.items()},
        bindings=bindings,
    )


def _binding(
    plan: Plan, pass_name: str, uniform: str, channel: int, raw: dict | None, buffers: set[str]
) -> tuple[Binding, str]:
    if raw is None:
        return Binding(uniform, "black", channel=channel), "sampler2D"
    kind, ref = str(raw.get("kind") or "texture"), raw.get("ref")
    sampler = dict(raw.get("sampler") or {})
    if kind == "buffer" and ref in buffers:
        return Binding(uniform, "buffer", ref, sampler, channel), "sampler2D"
    standin, glsl_type = STANDINS.get(kind, ("black", "sampler2D"))
    if kind == "buffer":
        standin = "black"
    plan.standins.append(
        {"pass": pass_name, "channel": channel, "kind": kind, "ref": ref, "standin": standin}
    )
    return Binding(uniform, standin, ref, sampler, channel), glsl_type
