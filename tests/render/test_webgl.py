"""What a browser gives WebGL programs that a desktop compiler does not (render/dialects/webgl.py):
each shader here compiles and draws in a browser, and failed or drew wrong here before."""

from __future__ import annotations

import numpy as np
import pytest

from render.dialects import build_plan
from render.dialects.webgl import drop_conditional_uniforms
from render.dialects.zeroinit import zero_initialise_locals
from render.program import RenderPassSource, RenderProgram


def pixel(engine, program: RenderProgram) -> tuple[int, ...]:
    """The colour (r, g, b) of the middle pixel of an 8x8 frame at t = 1 s."""
    with engine.compile(program, float_picture=False) as compiled:
        compiled.render(1.0, (8, 8))
        out = np.zeros((8, 8, 4), np.uint8)
        return tuple(int(v) for v in compiled.read_into(out)[4, 4, :3])


#: Shadertoy's header defines HW_PERFORMANCE (1 on desktops); a program that also runs elsewhere
#: declares its uniforms itself where it is not defined.
HW_PERFORMANCE = """#if HW_PERFORMANCE==0
#define BRIGHT 0.0
#else
#define BRIGHT 1.0
#endif
#ifndef HW_PERFORMANCE
uniform vec3 iResolution;
uniform sampler2D iChannel0;
#endif
void mainImage(out vec4 c, in vec2 f) {
    c = vec4(BRIGHT, f.x / iResolution.x, float(textureSize(iChannel0, 0).x), 1.0);
}"""

#: GLSL Sandbox code branches on GL_ES, which every WebGL compiler defines.
GL_ES = """#ifdef GL_ES
precision mediump float;
#define RED 1.0
#else
#define RED 0.0
#endif
#if defined(GL_ES) && GL_ES == 1
#define GREEN 1.0
#endif
#ifndef GL_ES
this branch never compiled in a browser
#endif
uniform vec2 resolution;
void main() { gl_FragColor = vec4(RED, GREEN, 0.0, 1.0); }"""

#: GLSL ES 1.00 keeps the built-in cross(vec3, vec3) visible beside the program's own cross(float).
OVERLOAD = """precision mediump float;
float cross(float a) { return a * 0.5; }
float max(vec3 v) { return max(max(v.x, v.y), v.z); }
void main() {
    vec3 n = cross(vec3(1.0, 0.0, 0.0), vec3(0.0, 1.0, 0.0));
    gl_FragColor = vec4(n.z, cross(1.0), max(vec3(0.0, 0.25, 0.0)), 1.0);
}"""

#: WebGL zeroes locals declared without a value: scalars, arrays and structs holding arrays.
UNINITIALISED = """struct Acc { vec3 sum; float weights[4]; };
void mainImage(out vec4 c, in vec2 f) {
    float total;
    vec3 pts[3];
    Acc acc;
    for (int i = 0; i < 3; i++) total += 0.25;
    pts[1] = vec3(0.5);
    acc.weights[2] = 0.25;
    c = vec4(total, pts[0].x + pts[1].x + pts[2].x, acc.sum.x + acc.weights[0] + acc.weights[2], 1.0);
}"""


def test_shadertoy_defines_hw_performance_as_the_site_does_on_a_desktop(engine):
    program = RenderProgram.single(HW_PERFORMANCE)
    assert "#define HW_PERFORMANCE 1\n" in build_plan(program).image.fragment
    # The site's branch, not the phone's; iResolution and iChannel0 (a 1x1 black stand-in) are
    # the ones the site declares, although the program's own are not compiled.
    assert pixel(engine, program) == (255, 143, 255)


def test_webgl_dialects_define_gl_es_under_a_name_desktop_glsl_allows(engine):
    for dialect in ("glslsandbox", "twigl-classic"):
        program = RenderProgram.single(GL_ES, dialect, f"{dialect}:gl-es")
        fragment = build_plan(program).image.fragment
        assert "GL_ES" not in fragment.replace("_ip_GL_ES", "")
        assert pixel(engine, program) == (255, 255, 0), dialect


def test_shadertoy_and_gl_transitions_see_gl_es_too():
    shadertoy = RenderProgram.single("#ifdef GL_ES\n#define X 1.0\n#endif\n" + UNINITIALISED)
    transition = RenderProgram.single(
        "#ifdef GL_ES\nprecision highp float;\n#endif\nvec4 transition(vec2 uv) { return vec4(1.0); }",
        "gl-transition",
        "gl-transitions:t",
    )
    for program in (shadertoy, transition):
        fragment = build_plan(program).image.fragment
        assert "#define _ip_GL_ES 1\n" in fragment and "#ifdef _ip_GL_ES" in fragment


def test_an_es1_program_overloading_a_builtin_still_reaches_the_builtin(engine):
    program = RenderProgram.single(OVERLOAD, "glslsandbox", "glslsandbox:overload")
    fragment = build_plan(program).image.fragment
    assert "float _ip_cross(float a)" in fragment  # the program's own, renamed
    assert "vec3 _ip_cross(vec3 a0, vec3 a1) { return cross(a0, a1); }" in fragment
    assert "float _ip_max(vec3 v) { return _ip_max(_ip_max(v.x, v.y), v.z); }" in fragment
    assert "float _ip_max(float a0, float a1) { return max(a0, a1); }" in fragment
    assert pixel(engine, program) == (255, 128, 64)


def test_locals_declared_without_a_value_start_at_zero(engine):
    assert pixel(engine, RenderProgram.single(UNINITIALISED)) == (191, 128, 64)


def test_zero_initialisation_edits_only_local_declarations_without_a_value():
    code = (
        "struct S { vec3 a; float b[2]; };\nuniform Block { float q; };\nfloat g;\n"
        "void f(float k) {\n  float d; vec3 c = vec3(1.0), e;\n  const float z = 1.0;\n"
        "  for (int i; i < 3; i++) { mat2 m; }\n  S s; float[2] w;\n}\n"
    )
    assert zero_initialise_locals(code) == (
        "struct S { vec3 a; float b[2]; };\nuniform Block { float q; };\nfloat g;\n"
        "void f(float k) {\n  float d = float(0); vec3 c = vec3(1.0), e = vec3(0);\n  const float z = 1.0;\n"
        "  for (int i; i < 3; i++) { mat2 m = mat2(0.0); }\n"
        "  S s; s.a = vec3(0); for (int _ip_z1 = 0; _ip_z1 < 2; ++_ip_z1) { s.b[_ip_z1] = float(0); }"
        " float[2] w; for (int _ip_z0 = 0; _ip_z0 < 2; ++_ip_z0) { w[_ip_z0] = float(0); }\n}\n"
    )


def test_code_whose_blocks_open_in_preprocessor_branches_is_left_alone():
    code = "#ifdef A\nvoid f() {\n#else\nvoid f(int a) {\n#endif\n float d;\n}\n"
    assert zero_initialise_locals(code) == code


def test_a_declaration_ended_only_in_another_preprocessor_branch_is_left_alone():
    """Seen in the corpus: the `;` of a branch we cannot tell from the other is missing."""
    code = (
        "void f() {\n#ifdef A\n  float s = 0.5;\n#else\n  float s = 0.25\n#endif\n"
        "  for (int i = 0; i < 2; i++) { s += 1.0; }\n  float t;\n}\n"
    )
    assert zero_initialise_locals(code) == code.replace("float t;", "float t = float(0);")


def test_only_conditional_declarations_of_the_sites_uniforms_go_and_lines_stay():
    code = (
        "uniform float iTime;\n#ifndef X\nuniform vec3 iResolution, iMouse;\n#if Y\n"
        "uniform float mine;\nuniform sampler2D iChannel0; float keep;\n#endif\n#endif\n"
    )
    names = {"iTime", "iResolution", "iMouse", "iChannel0"}
    assert drop_conditional_uniforms(code, names) == (
        "uniform float iTime;\n#ifndef X\n\n#if Y\nuniform float mine;\n float keep;\n#endif\n#endif\n"
    )


#: Seen in the corpus: a Common pass that declares uniforms only when compiled on its own, as the
#: site compiles the Common tab (its header is shorter there): never in a pass on the site.
COMMON_TAB_HEADER = """#if __LINE__ < 17
#define _ST_TAB_COMMON
#endif
#ifdef _ST_TAB_COMMON
uniform float iTime;
#endif
float pulse() { return 0.5 + 0.5 * sin(iTime); }"""


def test_a_common_pass_declaring_the_sites_uniforms_for_its_own_tab_compiles(engine):
    common = RenderPassSource("Common", "common", COMMON_TAB_HEADER)
    image = RenderPassSource("Image", "image", "void mainImage(out vec4 c, in vec2 f) { c = vec4(1.0); }")
    assert pixel(engine, RenderProgram("shadertoy:tab", "shadertoy", (image, common))) == (255, 255, 255)


def test_declarations_the_scan_cannot_read_for_sure_are_left_alone():
    macro_declarator = "#define o V = abs(U), W = V.yx\nvoid f(vec2 U) { vec2 o, w = W; }\n"
    assert zero_initialise_locals(macro_declarator) == macro_declarator
    twice = "#ifdef A\nstruct S { float m[9]; };\n#else\nstruct S { vec4 p; };\n#endif\nvoid f() { S s; }\n"
    assert zero_initialise_locals(twice) == twice
    branchy = "struct S { float a;\n#ifdef B\n float b;\n#endif\n};\nvoid f() { S s; }\n"
    assert zero_initialise_locals(branchy) == branchy


#: Mesa's preprocessor glues a macro argument's sign to the sign before the parameter.
SIGNED_ARGUMENT = """#define SUB(a, b) (b-a)
void mainImage(out vec4 c, in vec2 f) { c = vec4(SUB(-0.5, 0.5), 0.0, 0.0, 1.0); }"""

#: A program that supersamples by wrapping its own mainImage in a macro (a common Shadertoy idiom).
WRAPPED_MAIN = """#define mainImage mainImage0(out vec4 O, vec2 U);  \\
void mainImage(out vec4 O, vec2 U) { mainImage0(O, U); O.g = 1.0; } \\
void mainImage0
void mainImage(out vec4 fragColor, in vec2 fragCoord) { fragColor = vec4(1.0, 0.0, 0.0, 1.0); }"""


@pytest.mark.parametrize(("code", "colour"), [(SIGNED_ARGUMENT, (255, 0, 0)), (WRAPPED_MAIN, (255, 255, 0))])
def test_shadertoy_idioms_mesa_or_our_wrapper_used_to_reject(engine, code, colour):
    assert pixel(engine, RenderProgram.single(code)) == colour


def test_a_main_declared_by_a_common_macro_of_another_name_keeps_its_qualifiers(engine):
    """Seen in the corpus: Common's macro declares mainImage with `out`, the pass defines it."""
    common = RenderPassSource(
        "Common", "common", "#define V vec4\n#define M void mainImage(out V O, vec2 u) \\\n;"
    )
    image = RenderPassSource(
        "Image", "image", "M\nvoid mainImage(out vec4 O, vec2 u) { O = vec4(0.0, 1.0, 0.0, 1.0); }"
    )
    assert pixel(engine, RenderProgram("shadertoy:m", "shadertoy", (image, common))) == (0, 255, 0)


def test_a_wrapped_main_in_the_common_pass_keeps_its_qualifiers():
    common = RenderPassSource("Common", "common", WRAPPED_MAIN.rsplit("\n", 1)[0])
    image = RenderPassSource("Image", "image", WRAPPED_MAIN.rsplit("\n", 1)[1])
    fragment = build_plan(RenderProgram("shadertoy:w", "shadertoy", (image, common))).image.fragment
    assert "void mainImage(out vec4 c, in vec2 f);" in fragment and "inout" not in fragment
