"""The engine on a real OpenGL context (llvmpipe here): pixels, feedback, determinism, read-back."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from corpus.errors import ImageProgramsError
from render.engine import ShaderError, UnsupportedProgram
from render.program import RenderPassSource, RenderProgram
from render.standins import standin_pixels
from tests.render.helpers import COUNTER_BUFFER, SHOW_BUFFER

GOLDEN = Path(__file__).parent / "golden"
#: Golden-image tolerance, in 8-bit levels: mean absolute difference and the largest one allowed.
#: Drivers may round transcendental functions differently; llvmpipe versions agree within these.
GOLDEN_MEAN, GOLDEN_MAX = 1.0, 24

GRADIENT = "void mainImage(out vec4 c, in vec2 f) { c = vec4(f / iResolution.xy, 0.25, 1.0); }"
PLASMA = """void mainImage(out vec4 c, in vec2 f) {
    vec2 p = (2.0 * f - iResolution.xy) / iResolution.y;
    float v = sin(p.x * 5.0 + iTime) + sin(p.y * 4.0 - iTime * 0.7) + sin(length(p) * 6.0);
    c = vec4(0.5 + 0.5 * cos(v + vec3(0.0, 2.0, 4.0)), 1.0);
}"""
GEEKEST = "o=vec4(hsv(length(FC.xy/r-.5)+t*.1,.8,1.),1);"
SANDBOX_TRAIL = """precision mediump float;
uniform sampler2D backbuffer; uniform vec2 resolution; uniform float time;
void main() {
    vec2 uv = gl_FragCoord.xy / resolution;
    gl_FragColor = texture2D(backbuffer, uv) + vec4(0.125, 0.0, 0.2 * uv.x, 1.0);
}"""


def render_u8(engine, program, t=1.0, size=(32, 24), frames=1):
    with engine.compile(program) as compiled:
        for _ in range(frames):
            compiled.render(t, size)
        out = np.zeros((size[1], size[0], 4), np.uint8)
        return compiled.read_into(out)


def test_gradient_matches_the_formula_pixel_for_pixel(engine):
    out = render_u8(engine, RenderProgram.single(GRADIENT), size=(40, 30))
    ys, xs = np.mgrid[0:30, 0:40]
    expected_r = (xs + 0.5) / 40 * 255
    expected_g = (29 - ys + 0.5) / 30 * 255  # row 0 of the array is the top of the picture
    assert np.abs(out[..., 0] - expected_r).max() <= 1.0
    assert np.abs(out[..., 1] - expected_g).max() <= 1.0
    assert (out[..., 2] == 64).all() and (out[..., 3] == 255).all()


def test_same_program_and_time_give_the_same_pixels(engine):
    a = render_u8(engine, RenderProgram.single(PLASMA), t=2.5, size=(48, 32))
    b = render_u8(engine, RenderProgram.single(PLASMA), t=2.5, size=(48, 32))
    c = render_u8(engine, RenderProgram.single(PLASMA), t=3.5, size=(48, 32))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def _golden(name: str, picture: np.ndarray) -> np.ndarray:
    from PIL import Image

    path = GOLDEN / f"{name}.png"
    if os.environ.get("IMAGEPROGRAMS_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        Image.fromarray(picture).save(path)
    return np.asarray(Image.open(path).convert("RGBA"))


@pytest.mark.parametrize(
    ("name", "program", "t", "frames"),
    [
        ("plasma", RenderProgram.single(PLASMA), 1.25, 1),
        ("sandbox_trail", RenderProgram.single(SANDBOX_TRAIL, "glslsandbox"), 0.0, 3),
        (
            "twigl_geekest",
            RenderProgram.single("o=vec4(hsv(length(FC.xy/r-.5)+t*.1,.8,1.),1);", "twigl-geekest-300es"),
            2.0,
            1,
        ),
    ],
)
def test_golden_images(engine, name, program, t, frames):
    picture = render_u8(engine, program, t=t, size=(64, 48), frames=frames)
    golden = _golden(name, picture)
    diff = np.abs(picture.astype(int) - golden.astype(int))
    assert diff.mean() <= GOLDEN_MEAN and diff.max() <= GOLDEN_MAX, (diff.mean(), diff.max())


READ_BUFFER_A = {"channel": 0, "kind": "buffer", "ref": "Buffer A"}


def test_buffer_feedback_counts_frames_in_float(engine):
    program = RenderProgram(
        "shadertoy:counter",
        "shadertoy",
        (
            RenderPassSource(
                "Buffer A", "buffer", COUNTER_BUFFER, ({"channel": 0, "kind": "buffer", "ref": "Buffer A"},)
            ),
            RenderPassSource(
                "Image", "image", SHOW_BUFFER, ({"channel": 0, "kind": "buffer", "ref": "Buffer A"},)
            ),
        ),
    )
    with engine.compile(program) as compiled:
        for i in range(300):
            compiled.render(i / 60, (8, 8))
        value = compiled.read_float((8, 8))[0, 0]
    assert value[0] == 300.0  # 300 increments survive: float buffers, not 8-bit
    assert value[1] == 299.0  # iFrame of the last frame


def test_example_multipass_counter_reaches_n_minus_one(engine, example_programs):
    with engine.compile(example_programs["shadertoy:ipEx05"]) as compiled:
        for i in range(45):
            compiled.render(i / 30, (48, 32))
        buffer = compiled._targets_for((48, 32)).buffers["Buffer A"][0]
        data = np.frombuffer(buffer.read(), np.float32).reshape(32, 48, 4)
    assert tuple(data[0, 0]) == (44.0, 44.0, 0.0, 1.0)


def test_backbuffer_feedback_accumulates_in_sandbox_code(engine):
    with engine.compile(RenderProgram.single(SANDBOX_TRAIL, "glslsandbox")) as compiled:
        for _ in range(5):
            compiled.render(0.0, (16, 16))
        assert np.allclose(compiled.read_float((16, 16))[..., 0], 0.625)


def test_reset_forgets_feedback(engine):
    with engine.compile(RenderProgram.single(SANDBOX_TRAIL, "glslsandbox")) as compiled:
        for _ in range(4):
            compiled.render(0.0, (16, 16))
        compiled.reset()
        compiled.render(0.0, (16, 16))
        assert np.allclose(compiled.read_float((16, 16))[..., 0], 0.125)


def test_mrt_second_target_is_readable(engine):
    code = "o0 = vec4(0.25, 0.0, 0.0, 1.0);\no1 = vec4(0.0, 0.75, 0.0, 1.0);\n"
    with engine.compile(RenderProgram.single(code, "twigl-geekest-mrt")) as compiled:
        compiled.render(0.0, (8, 8))
        assert np.allclose(compiled.read_float((8, 8), target=0)[0, 0], (0.25, 0, 0, 1))
        assert np.allclose(compiled.read_float((8, 8), target=1)[0, 0], (0, 0.75, 0, 1))


def test_nan_reads_as_black_in_8_bits_and_stays_nan_in_float(engine):
    code = "void mainImage(out vec4 c, in vec2 f) { c = vec4(sqrt(-1.0 - f.x), 0.5, 0.0, 1.0); }"
    with engine.compile(RenderProgram.single(code)) as compiled:
        compiled.render(0.0, (8, 8))
        out = compiled.read_into(np.zeros((8, 8, 4), np.uint8))
        assert np.isnan(compiled.read_float((8, 8))[..., 0]).all()
    assert (out[..., 0] == 0).all() and (out[..., 1] == 128).all()


def test_read_into_fills_a_preallocated_rgb_slice_without_allocating(engine):
    batch = np.zeros((3, 24, 32, 3), np.uint8)
    with engine.compile(RenderProgram.single(PLASMA)) as compiled:
        for i in range(3):
            compiled.render(float(i), (32, 24))
            returned = compiled.read_into(batch[i])
            assert returned is batch[i] or returned.base is batch
    assert len({batch[i].tobytes() for i in range(3)}) == 3
    assert batch.std() > 20


def test_several_resolutions_from_one_compile(engine):
    with engine.compile(RenderProgram.single(GRADIENT)) as compiled:
        for size in ((16, 16), (64, 32), (128, 128)):
            compiled.render(0.0, size)
            out = compiled.read_into(np.zeros((size[1], size[0], 4), np.uint8))
            assert out[0, -1, 0] >= 245 and out[-1, 0, 1] <= 10


def test_compile_error_carries_the_driver_log_with_user_line_numbers(engine):
    code = "void mainImage(out vec4 c, in vec2 f) {\n    c = vec4(1.0)\n}"
    with pytest.raises(ShaderError) as info:
        engine.compile(RenderProgram.single(code))
    assert info.value.status == "compile_error"
    assert "0:3(" in info.value.log  # the missing ';' is reported where the user wrote it


def test_unsupported_program_raises(engine):
    program = RenderProgram("shadertoy:s", "shadertoy", (RenderPassSource("Sound", "sound", "x"),))
    with pytest.raises(UnsupportedProgram):
        engine.compile(program)


def test_every_example_that_should_render_does_in_its_dialect(engine, example_programs, expected):
    rendered = set()
    for key, program in example_programs.items():
        if expected[key]["expect"] not in ("ok", "texture"):
            continue
        frames = [render_u8(engine, program, t=t, size=(32, 24), frames=2) for t in (0.5, 2.0)]
        assert frames[0][..., :3].std() > 3, key
        rendered.add(program.dialect)
    assert len([d for d in rendered if d.startswith("twigl-")]) == 12
    assert {"shadertoy", "glslsandbox", "glsl", "isf", "gl-transition"} <= rendered


def test_standins_are_deterministic_per_asset():
    a, b = standin_pixels("noise", "/media/a.png"), standin_pixels("noise", "/media/a.png")
    c = standin_pixels("noise", "/media/b.png")
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert standin_pixels("keyboard").shape == (3, 256, 4) and not standin_pixels("keyboard").any()
    assert standin_pixels("cubemap", "x").shape == (6, 128, 128, 4)
    assert standin_pixels("volume", "x").shape == (32, 32, 32, 4)


def test_engine_reports_its_renderer(engine):
    assert engine.renderer_string.count(" | ") == 2
    assert engine.device.version


def test_the_8_bit_fast_path_shows_the_same_pictures_as_the_float_path(engine, example_programs):
    """``float_picture=False`` draws the image pass straight into 8 bits: same rows, same NaN → 0."""
    nan_edge = (
        "void mainImage(out vec4 c, in vec2 f) { c = vec4(f.x < 4.0 ? sqrt(-1.0 - f.y) : 2.0, 0.5, 0, 1); }"
    )
    cases = [RenderProgram.single(p) for p in (GRADIENT, PLASMA, nan_edge)]
    cases += [RenderProgram.single(SANDBOX_TRAIL, "glslsandbox"), example_programs["shadertoy:ipEx04"]]
    for program in cases:
        pictures = []
        for float_picture in (True, False):
            with engine.compile(program, float_picture=float_picture) as compiled:
                for i in range(3):
                    compiled.render(0.5 + i / 60, (24, 16))
                rgb = compiled.read_into(np.zeros((16, 24, 3), np.uint8))
                pictures.append((compiled.read_into(np.zeros((16, 24, 4), np.uint8)), rgb))
        (slow, _), (fast, fast_rgb) = pictures
        assert np.abs(slow.astype(int) - fast).max() <= 1, program.key
        assert np.array_equal(fast[..., :3], fast_rgb)


def test_the_8_bit_fast_path_refuses_float_reads(engine):
    with engine.compile(RenderProgram.single(GRADIENT), float_picture=False) as compiled:
        compiled.render(0.0, (8, 8))
        with pytest.raises(ImageProgramsError, match="8-bit pictures only"):
            compiled.read_float((8, 8))


DERIVATIVES = """void mainImage(out vec4 c, in vec2 f) {
    float v = sin(f.x * 0.37) * f.y * f.y * 0.01 + gl_FragCoord.y * 0.1;
    c = vec4(0.5 + dFdx(v), 0.5 + dFdy(v), fwidth(v) * 0.2, 1.0);
}"""
ISF_VARYING = """/*{ "INPUTS": [] }*/
void main() { gl_FragColor = vec4(isf_FragNormCoord, fract(TIME), 1.0); }"""
PLAIN_VARYING = """#version 330
in vec2 vUv;
out vec4 color;
void main() { color = vec4(vUv, dFdy(vUv.y) * 20.0, 1.0); }"""
PLAIN_FRAGCOORD = """#version 330
uniform vec2 u_resolution;
out vec4 color;
void main() { vec2 uv = gl_FragCoord.xy / u_resolution; color = vec4(uv, fwidth(uv.y * uv.x) * 9.0, 1.0); }"""
SANDBOX_SURFACE = """precision mediump float;
varying vec2 surfacePosition;
void main() { gl_FragColor = vec4(fract(surfacePosition * 3.0), 0.5, 1.0); }"""


@pytest.mark.parametrize("size", [(24, 16), (33, 17)])
def test_the_picture_drawn_upside_down_reads_the_same_as_the_cpu_flip_did(
    engine, example_programs, size, monkeypatch
):
    """The 8-bit fast path draws the image pass upside down and reads rows in order: the pictures
    are exactly those of the old bottom-up read and CPU flip, with and without buffers."""
    import render.engine

    cases = {
        "gradient": RenderProgram.single(GRADIENT),
        "plasma": RenderProgram.single(PLASMA),
        "derivatives": RenderProgram.single(DERIVATIVES),
        "twigl": RenderProgram.single(GEEKEST, "twigl-geekest-300es"),  # declares b: feedback
        "twigl-classic": RenderProgram.single(
            "precision highp float; uniform vec2 resolution; uniform float time;\n"
            "void main() { gl_FragColor = vec4(gl_FragCoord.xy / resolution, fract(time), 1.0); }",
            "twigl-classic",
        ),
        "isf": RenderProgram.single(ISF_VARYING, "isf", "dir:x.fs"),  # interpolated: not flipped
        "plain": RenderProgram.single(PLAIN_VARYING, "glsl", "repo:x.frag"),  # the same
        "plain-fragcoord": RenderProgram.single(PLAIN_FRAGCOORD, "glsl", "repo:y.frag"),
        "sandbox": RenderProgram.single(SANDBOX_SURFACE, "glslsandbox"),  # the same
        "buffers": example_programs["shadertoy:ipEx04"],  # Common, Buffer A read by the image
        "counter": example_programs["shadertoy:ipEx05"],
        "feedback": RenderProgram.single(SANDBOX_TRAIL, "glslsandbox"),  # backbuffer: not flipped
        "mipmapped": example_programs["shadertoy:ipEx06"],  # a mipmapped texture: not flipped
    }
    w, h = size
    for name, program in cases.items():
        pictures, flipped = [], []
        for flip in (True, False):
            if not flip:  # the old read: bottom-up rows flipped on the CPU
                monkeypatch.setattr(render.engine, "upside_down", lambda p: None)
            with engine.compile(program, float_picture=False) as compiled:
                for i in range(3):
                    compiled.render(0.5 + i / 30, size)
                rgba = compiled.read_into(np.zeros((h, w, 4), np.uint8))
                rgb = compiled.read_into(np.zeros((h, w, 3), np.uint8))
                strided = compiled.read_into(np.zeros((h, w + 3, 4), np.uint8)[:, :w])
                pictures.append((rgba, rgb, strided))
                flipped.append(compiled.upside_down)
            monkeypatch.undo()
        (new, new_rgb, new_strided), (old, _, _) = pictures
        upright = ("twigl", "feedback", "mipmapped", "isf", "plain", "sandbox")
        assert flipped == [name not in upright, False], name
        assert np.array_equal(new, old), (name, np.abs(new.astype(int) - old).max())
        assert np.array_equal(new_rgb, old[..., :3]) and np.array_equal(new_strided, old), name
        assert new[..., :3].std() > 2, name
