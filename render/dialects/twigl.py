"""twigl's twelve modes: classic, geek, geeker, geekest, each plain (WebGL 1), ``300 es`` and MRT.

As twigl runs them: classic and geek code is a whole shader that declares its own uniforms
(classic ``resolution mouse time frame backbuffer``, geek ``r m t f b``); geeker and geekest get
an implicit header with the short uniforms (and ``out vec4 o`` in 300 es, ``o0 o1 b0 b1`` in
MRT); geekest also gets ``#define FC gl_FragCoord``, helper functions and an implicit
``void main(){…}`` around its body. ``frame`` is a float in every mode; the backbuffers hold the
previous frame. MRT writes two targets; target 0 is the picture.

The helpers (``hsv``, ``rotate2D``, ``rotate3D``, ``snoise2D/3D/4D``, ``fsnoise``, ``PI``,
``PI2``) are our own implementations with twigl's names and signatures: the noise is a gradient
noise of the same range, not bit-identical to twigl's.
"""

from __future__ import annotations

import re

from render.dialects.plan import Binding, PassPlan, Plan, vertex_for
from render.dialects.translate import DESKTOP_HEADER, desktop_body, es1_output, uniform_names
from render.dialects.webgl import as_in_a_browser
from render.program import RenderProgram

CLASSIC_UNIFORMS = {
    "resolution": "resolution",
    "mouse": "mouse-normalised",
    "time": "time",
    "frame": "frame",
}
SHORT_UNIFORMS = {"r": "resolution", "m": "mouse-normalised", "t": "time", "f": "frame", "s": "zero"}

SHORT_HEADER = "uniform vec2 r;\nuniform vec2 m;\nuniform float t;\nuniform float f;\nuniform float s;\n"
GEEKEST_HELPERS = """\
#define FC gl_FragCoord
const float PI = 3.141592653589793;
const float PI2 = PI * 2.0;
vec3 hsv(float h, float s, float v) {
    vec3 k = clamp(abs(mod(h * 6.0 + vec3(0.0, 4.0, 2.0), 6.0) - 3.0) - 1.0, 0.0, 1.0);
    return v * mix(vec3(1.0), k, s);
}
mat2 rotate2D(float a) { float c = cos(a), s = sin(a); return mat2(c, s, -s, c); }
mat3 rotate3D(float a, vec3 axis) {
    vec3 u = normalize(axis);
    float c = cos(a), s = sin(a), k = 1.0 - c;
    return mat3(c + u.x * u.x * k, u.y * u.x * k + u.z * s, u.z * u.x * k - u.y * s,
                u.x * u.y * k - u.z * s, c + u.y * u.y * k, u.z * u.y * k + u.x * s,
                u.x * u.z * k + u.y * s, u.y * u.z * k - u.x * s, c + u.z * u.z * k);
}
float fsnoise(vec2 c) { return fract(sin(dot(c, vec2(12.9898, 78.233))) * 43758.5453); }
vec4 _ip_grad4(vec4 p) {
    vec4 q = fract(sin(vec4(dot(p, vec4(127.1, 311.7, 74.7, 19.3)), dot(p, vec4(269.5, 183.3, 246.1, 97.7)),
                            dot(p, vec4(113.5, 271.9, 124.6, 51.1)), dot(p, vec4(37.3, 91.1, 173.9, 211.7))))
                   * 43758.5453);
    return normalize(q * 2.0 - 1.0 + 1e-4);
}
float snoise4D(vec4 p) {
    vec4 i = floor(p), f = fract(p), u = f * f * (3.0 - 2.0 * f);
    float total = 0.0;
    for (int k = 0; k < 16; k++) {
        vec4 o = vec4(float(k & 1), float((k >> 1) & 1), float((k >> 2) & 1), float((k >> 3) & 1));
        vec4 w = mix(1.0 - u, u, o);
        total += w.x * w.y * w.z * w.w * dot(_ip_grad4(i + o), f - o);
    }
    return clamp(total * 1.8, -1.0, 1.0);
}
float snoise3D(vec3 p) { return snoise4D(vec4(p, 0.0)); }
float snoise2D(vec2 p) { return snoise4D(vec4(p, 0.0, 0.0)); }
"""

_MODE = re.compile(r"^twigl-(classic|geek|geeker|geekest)(?:-(300es|mrt))?$")


def plan_twigl(program: RenderProgram) -> Plan:
    plan = Plan(program.dialect)
    match = _MODE.match(program.dialect)
    images = program.pass_of_type("image") or list(program.passes)
    if not match or not images:
        plan.unsupported = f"not a twigl mode: {program.dialect}"
        return plan
    family, variant = match.group(1), match.group(2) or ""
    es1, mrt = variant == "", variant == "mrt"
    code = images[0].code
    body = desktop_body(code, es1=es1)
    parts = [DESKTOP_HEADER]
    if es1:
        body, outputs = es1_output(body)
        parts.append(outputs)
    if family in ("geeker", "geekest"):
        parts.append(SHORT_HEADER)
        if mrt:
            parts.append(
                "layout(location = 0) out vec4 o0;\nlayout(location = 1) out vec4 o1;\n"
                "uniform sampler2D b0;\nuniform sampler2D b1;\n"
            )
        else:
            parts.append("uniform sampler2D b;\n" + ("" if es1 else "out vec4 o;\n"))
    if family == "geekest":
        parts.append(GEEKEST_HELPERS)
        body = "void main() {\n#line 1 0\n" + body + "\n}\n"
    else:
        body = "#line 1 0\n" + body + "\n"
    (body,), browser = as_in_a_browser([body], es1=es1)
    fragment = "".join(parts) + browser + body
    declared = uniform_names(fragment)
    semantics = CLASSIC_UNIFORMS if family == "classic" else SHORT_UNIFORMS
    if family == "classic":
        feedback = {"backbuffer0": "0", "backbuffer1": "1"} if mrt else {"backbuffer": "0"}
    else:
        feedback = {"b0": "0", "b1": "1"} if mrt else {"b": "0"}
    bindings = [Binding(name, "feedback", ref) for name, ref in feedback.items() if name in declared]
    plan.passes.append(
        PassPlan(
            name="Image",
            fragment=fragment,
            vertex=vertex_for(fragment),
            outputs=2 if mrt else 1,
            uniforms=dict(semantics),
            bindings=bindings,
        )
    )
    return plan
