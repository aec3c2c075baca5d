"""Dialects turn stored passes into complete desktop GLSL; these tests need no OpenGL."""

from __future__ import annotations

import pytest

from render.dialects import build_plan
from render.dialects.plan import vertex_for
from render.dialects.translate import desktop_body, is_es1, uniform_names
from render.program import RenderPassSource, RenderProgram

IMAGE = "void mainImage(out vec4 fragColor, in vec2 fragCoord) { fragColor = vec4(1.0); }"


def shadertoy(*passes: RenderPassSource) -> RenderProgram:
    return RenderProgram("shadertoy:t", "shadertoy", passes)


def test_shadertoy_declares_every_standard_uniform_once():
    plan = build_plan(RenderProgram.single(IMAGE))
    fragment = plan.image.fragment
    for name in (
        "iResolution",
        "iTime",
        "iTimeDelta",
        "iFrame",
        "iFrameRate",
        "iChannelTime",
        "iChannelResolution",
        "iMouse",
        "iDate",
        "iSampleRate",
        "iChannel0",
        "iChannel3",
    ):
        assert fragment.count(f" {name};") + fragment.count(f" {name}[4];") == 1, name
    assert fragment.startswith("#version 330 core\n")


def test_shadertoy_out_parameter_becomes_inout_so_accumulating_code_starts_from_zero():
    plan = build_plan(RenderProgram.single(IMAGE))
    assert "void mainImage(inout vec4 fragColor" in plan.image.fragment
    assert "void mainImage(inout vec4 c, in vec2 f);" in plan.image.fragment


def test_wrapper_main_precedes_user_code_so_redefining_gl_fragcoord_cannot_break_it():
    code = "#define gl_FragCoord fragCoord\n" + IMAGE
    fragment = build_plan(RenderProgram.single(code)).image.fragment
    assert fragment.index("mainImage(c, gl_FragCoord.xy)") < fragment.index("#define gl_FragCoord")


def test_buffers_render_in_site_order_before_the_image_with_common_prepended():
    common = RenderPassSource("Common", "common", "float shared_fn() { return 1.0; }")
    b = RenderPassSource("Buffer B", "buffer", IMAGE, ({"channel": 0, "kind": "buffer", "ref": "Buffer A"},))
    a = RenderPassSource("Buffer A", "buffer", IMAGE)
    image = RenderPassSource("Image", "image", IMAGE, ({"channel": 1, "kind": "buffer", "ref": "Buffer B"},))
    plan = build_plan(shadertoy(image, b, common, a))
    assert [p.name for p in plan.passes] == ["Buffer A", "Buffer B", "Image"]
    assert all("shared_fn" in p.fragment for p in plan.passes)
    assert [p.is_image for p in plan.passes] == [False, False, True]
    image_bindings = {b.uniform: (b.kind, b.ref) for b in plan.image.bindings}
    assert image_bindings["iChannel1"] == ("buffer", "Buffer B")
    assert image_bindings["iChannel0"] == ("black", None)


@pytest.mark.parametrize(
    ("kind", "standin", "sampler_type"),
    [
        ("texture", "noise", "sampler2D"),
        ("video", "noise", "sampler2D"),
        ("webcam", "gradient", "sampler2D"),
        ("cubemap", "cubemap", "samplerCube"),
        ("volume", "volume", "sampler3D"),
        ("music", "silence", "sampler2D"),
        ("musicstream", "silence", "sampler2D"),
        ("mic", "silence", "sampler2D"),
        ("keyboard", "keyboard", "sampler2D"),
    ],
)
def test_every_asset_input_gets_a_recorded_deterministic_standin(kind, standin, sampler_type):
    image = RenderPassSource("Image", "image", IMAGE, ({"channel": 2, "kind": kind, "ref": "/media/x.png"},))
    plan = build_plan(shadertoy(image))
    assert f"uniform {sampler_type} iChannel2;" in plan.image.fragment
    assert plan.standins == [
        {"pass": "Image", "channel": 2, "kind": kind, "ref": "/media/x.png", "standin": standin}
    ]


def test_program_without_an_image_pass_is_unsupported():
    sound = RenderPassSource("Sound", "sound", "vec2 mainSound(int s, float t) { return vec2(0.0); }")
    plan = build_plan(shadertoy(sound))
    assert plan.unsupported and "no Image pass" in plan.unsupported


def test_sound_and_cubemap_passes_are_skipped_with_a_note():
    sound = RenderPassSource("Sound", "sound", "vec2 mainSound(int s, float t) { return vec2(0.0); }")
    cube = RenderPassSource(
        "Cube A", "cubemap", "void mainCubemap(out vec4 c, in vec2 f, in vec3 o, in vec3 d) {}"
    )
    plan = build_plan(shadertoy(RenderPassSource("Image", "image", IMAGE), sound, cube))
    assert [p.name for p in plan.passes] == ["Image"]
    assert len(plan.notes) == 2


def test_reserved_desktop_words_are_renamed_and_include_is_defused():
    code = 'float packed = 1.0; // #include "x"\nfloat row_major = packed;'
    body = desktop_body(code, es1=False)
    assert "packed_ip" in body and "row_major_ip" in body and '#include "x"' not in body


def test_es1_code_gets_core_texture_functions_and_varyings_become_inputs():
    code = "precision mediump float; varying vec2 v; uniform sampler2D s;\n"
    code += "void main(){ gl_FragColor = texture2D(s, v); }"
    assert is_es1(code)
    plan = build_plan(RenderProgram.single(code, "glslsandbox", "glslsandbox:1.0"))
    fragment = plan.image.fragment
    assert "in vec2 v;" in fragment and "_ip_FragColor = texture2D(s, v)" in fragment
    assert "#define texture2D _ip_tex2D" in fragment
    assert "out vec2 v;" in plan.image.vertex


def test_es3_and_desktop_code_is_not_es1():
    assert not is_es1("#version 300 es\nout vec4 o; void main(){ o = vec4(1); }")
    assert not is_es1("#version 330\nout vec4 o; void main(){ o = vec4(1); }")


def test_vertex_shader_feeds_surface_position_and_isf_coordinates():
    vertex = vertex_for("in vec2 surfacePosition;\nin vec2 isf_FragNormCoord;\nin vec4 vColor;\n")
    assert "surfacePosition = p * 0.5 * _ip_surface;" in vertex
    assert "isf_FragNormCoord = uv;" in vertex and "vColor = vec4(uv, 0.0, 1.0);" in vertex


@pytest.mark.parametrize("family", ["classic", "geek", "geeker", "geekest"])
@pytest.mark.parametrize("variant", ["", "-300es", "-mrt"])
def test_every_twigl_mode_plans_its_outputs_and_backbuffers(family, variant):
    dialect = f"twigl-{family}{variant}"
    short = family != "classic"
    if family in ("classic", "geek"):
        names = ("resolution", "time", "backbuffer") if not short else ("r", "t", "b")
        fb = {"": [names[2]], "-300es": [names[2]], "-mrt": [f"{names[2]}0", f"{names[2]}1"]}[variant]
        code = "precision highp float;\n" + "".join(
            f"uniform {'sampler2D' if n.startswith(('b', 'backbuffer')) else 'float'} {n};\n"
            for n in (names[1], *fb)
        )
        code += "void main(){}\n"
    else:
        code = "void main(){}\n" if family == "geeker" else "o = vec4(1.0);\n" if variant == "-300es" else ""
    plan = build_plan(RenderProgram("twigl:x", dialect, (RenderPassSource("Image", "image", code),)))
    assert plan.unsupported is None
    assert plan.image.outputs == (2 if variant == "-mrt" else 1)
    feedback = sorted(b.uniform for b in plan.image.bindings if b.kind == "feedback")
    if family in ("geeker", "geekest"):
        assert feedback == (["b0", "b1"] if variant == "-mrt" else ["b"])
        assert "uniform vec2 r;" in plan.image.fragment
    if family == "geekest":
        assert "#define FC gl_FragCoord" in plan.image.fragment and "void main() {" in plan.image.fragment
    assert set(plan.image.uniforms) >= ({"r", "t", "f"} if short else {"resolution", "time", "frame"})


def test_isf_inputs_become_uniforms_at_their_defaults():
    code = '/*{"ISFVSN": "2", "INPUTS": [{"NAME": "amount", "TYPE": "float", "DEFAULT": 0.25},\n'
    code += (
        '{"NAME": "tint", "TYPE": "color", "DEFAULT": [1, 0, 0, 1]}, {"NAME": "img", "TYPE": "image"}]}*/\n'
    )
    code += "void main(){ gl_FragColor = vec4(amount) * tint * IMG_THIS_PIXEL(img); }\n"
    plan = build_plan(RenderProgram.single(code, "isf", "dir:x.fs"))
    assert plan.image.constants == {"amount": 0.25, "tint": (1.0, 0.0, 0.0, 1.0)}
    assert "uniform float amount;" in plan.image.fragment
    assert [(b.uniform, b.kind) for b in plan.image.bindings] == [("img", "noise")]


def test_multipass_isf_is_unsupported_not_misrendered():
    code = '/*{"PASSES": [{"TARGET": "a"}, {}]}*/\nvoid main(){ gl_FragColor = vec4(1); }'
    plan = build_plan(RenderProgram.single(code, "isf", "dir:x.fs"))
    assert plan.unsupported and "PASSES" in plan.unsupported


def test_gl_transition_parameters_take_their_commented_defaults():
    code = (
        "uniform float smoothness; // = 0.3\nuniform vec2 center; // = vec2(0.5, 0.25)\n"
        "uniform ivec2 squares; // = ivec2(10,10)\nuniform bool flip; // = true\n"
        "vec4 transition(vec2 uv) { return mix(getFromColor(uv), getToColor(uv), progress); }\n"
    )
    plan = build_plan(RenderProgram.single(code, "gl-transition", "gl-transitions:x"))
    assert plan.image.constants == {
        "smoothness": 0.3,
        "center": (0.5, 0.25),
        "squares": (10.0, 10.0),
        "flip": True,
    }


def test_plain_glsl_uniforms_are_recognised_by_common_names():
    code = "#version 330\nuniform float u_time; uniform vec2 u_resolution; uniform vec2 u_mouse;\n"
    code += "uniform float zoom;\n"
    code += "out vec4 c; void main(){ c = vec4(u_time); }"
    plan = build_plan(RenderProgram.single(code, "glsl", "dir:x.frag"))
    assert plan.image.uniforms == {"u_time": "time", "u_resolution": "resolution", "u_mouse": "mouse-pixels"}
    assert plan.image.fragment.startswith("#version 330\n#line 1 0\n")


def test_plain_glsl_with_only_main_image_renders_as_shadertoy():
    plan = build_plan(RenderProgram("dir:x.glsl", "glsl", (RenderPassSource("Image", "image", IMAGE),)))
    assert "mainImage(c, gl_FragCoord.xy)" in plan.image.fragment


def test_uniform_names_reads_lists_and_precision():
    assert uniform_names("uniform highp vec2 a, b;\nuniform sampler2D s; // uniform float no;") == {
        "a": "vec2",
        "b": "vec2",
        "s": "sampler2D",
    }


def test_unknown_dialect_is_unsupported():
    assert build_plan(RenderProgram("x:y", "hlsl", ())).unsupported == "unknown dialect 'hlsl'"
