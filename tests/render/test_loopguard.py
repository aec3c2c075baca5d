"""The loop guard: every loop bounded (GPU-safe validation), programs unchanged until it trips."""

from __future__ import annotations

import time

import numpy as np
import pytest

from render.dialects import build_plan
from render.dialects.loopguard import LOOP_BUDGET, TRIPPED_LOG, UnguardableLoop, guard_loops
from render.engine import Engine, LoopGuardRefused, ShaderError
from render.profiling import validate_one
from render.program import RenderPassSource, RenderProgram
from render.validate import ValidateOptions, validation_pool
from tests.render.helpers import GOOD, shadertoy_item

HEADER = "#version 330 core\nuniform float t;\n#line 1 0\n"

#: Endless loops of every kind, each with a cheap body: bounded, they end in well under a second.
ENDLESS_LOOPS = {
    "for": "for (;;) { v += 1.0; }",
    "while": "while (true) { v += 1.0; }",
    "do-while": "do { v += 1.0; } while (true);",
    "braceless": "for (int i = 0; i < 16; i += int(iTime > 1e9)) v += 1.0;",
    "continue": "for (int i = 0; i >= 0; ) { v += 1.0; if (v > 0.0) continue; i++; }",
    "nested": "for (int i = 0; i < 8; i++) { for (int j = 0; j < 4; j += int(iTime > 1e9)) v += 1.0; }",
    "macro": "LOOP { v += 1.0; }",
    "counted nest": "for (int i = 0; i < 60000; i++) for (int j = 0; j < 60000; j++) v += 1.0;",
}
MACRO = "#define LOOP while (v > -1.0)\n"


def _shader(body: str) -> str:
    return (
        f"void mainImage(out vec4 c, in vec2 f) {{\n    float v = 0.0;\n    {body}\n"
        "    c = vec4(v, 0.0, 0.0, 1.0);\n}\n"
    )


def _guarded(code: str, **kw) -> str:
    return guard_loops(HEADER + code, **kw)


# ---------------------------------------------------------------------------------------------
# The rewrite, without a context


def test_each_kind_of_loop_gets_a_check_before_each_iteration_and_a_count_at_its_back_edge():
    code = (
        "void f() {\n"
        "  for (int i = 0; i < n; i++) x += 1.0;\n"
        "  for (;;) { if (x > 3.0) break; }\n"
        "  while (x < 10.0) x++;\n"
        "  do { x--; } while (x > 0.0);\n"
        "  do x++; while (x < 3.0);\n"
        "}\n"
    )
    lines = _guarded(code).split("#line 1 0\n", 1)[1].splitlines()
    assert lines[1] == "  for (int i = 0; _ip_loop_ok() && ( i < n); i++, ++_ip_loops) x += 1.0;"
    assert lines[2] == "  for (; _ip_loop_ok(); ++_ip_loops) { if (x > 3.0) break; }"
    assert lines[3] == "  for (; _ip_loop_ok() && (x < 10.0); ++_ip_loops) x++;"
    assert lines[4] == "  do { x--; } while ((x > 0.0) && _ip_loop_next());"
    assert lines[5] == "  do x++; while ((x < 3.0) && _ip_loop_next());"


COUNTED = "{ _ip_loop_charge(%d); "


@pytest.mark.parametrize(
    ("loop", "count"),
    [
        ("for (int i = 0; i < 16; i++) x += sin(float(i) * 12.9898);", 16),
        ("for (float t = 0.; t <= 1.; t += .25) { x += t; }", 6),  # floats: counted with a margin
        ("for (int i = N; i > -N; i -= 2) x += 1.0;", 8),  # a literal macro defined once
        ("for (int i = 0; i < STEPS && x < 9.0; ++i) { x += 0.1; }", 64),  # a global constant
        ("for (int i = min(iFrame, 0); i < 5; i++) x += 1.0;", 5),  # zero, written not to unroll
        ("for (int i = ZERO; i < 5; i++) x += 1.0;", 5),
        ("for (int x = -1; x <= 1; x++) { cell.x += float(x); }", 3),  # a member named x
        ("for (int i = 0; i < 255; i++) { x += 1.0; if (x > 9.0) break; continue; }", 255),
    ],
)
def test_a_counted_loop_doing_bounded_work_is_left_as_written_and_charged_before_it(loop, count):
    head = (
        "#define N 8\n#define ZERO min(iFrame, 0)\nconst int STEPS = 64;\nfloat hash(float v) { return v; }\n"
    )
    body = _guarded(head + "void f() {\n  " + loop + "\n}\n").split("void f() {\n", 1)[1]
    assert body.startswith("  " + COUNTED % count + loop + " }")


def test_counted_loops_inside_a_counted_loop_are_charged_each_time_they_start():
    code = "void f() {\n  for (int i = 0; i < 4; i++) for (int j = 0; j < 3; j++) x += float(i * j);\n}\n"
    inner = "{ _ip_loop_charge(3); for (int j = 0; j < 3; j++) x += float(i * j); }"
    assert f"  {{ _ip_loop_charge(4); for (int i = 0; i < 4; i++) {inner} }}" in _guarded(code)


@pytest.mark.parametrize(
    "loop",
    [
        "for (int i = 0; i < 16; i++) { i += 1; }",  # changes its own variable
        "for (int i = 0; i < 16; i++) { bump(i); }",  # through an out parameter
        "for (int i = 0; i < 16; i++) { BUMP; }",  # through a macro
        "for (int i = 0; i < 16; i++) { x += spin(x); }",  # calls a function that loops
        "for (int i = 0; i < 1000; i++) for (int j = 0; j < 1000; j++) x += 1.0;",  # too much work
        "for (int i = 0; i < 16 || x < 1.0; i++) x += 1.0;",  # an `||`: not bounded by 16
        "for (int i = 0; i != 15; i += 2) x += 1.0;",  # never equal
        "for (float t = 0.; t < 1e9; t += 1e-3) x += 1.0;",  # too many, and stuck in float
        "for (int i = min(iFrame, 0); i > -5; i--) x += 1.0;",  # min(…) is only a lower bound
        "for (int i = 0; i < LIMIT; i++) x += 1.0;",  # a macro defined twice
        "for (int i = 0; i < 60000; i++) { OUTER }",  # a macro naming a macro that loops 60,000 times
    ],
)
def test_a_loop_that_may_not_end_when_its_header_says_gets_a_check_in_it(loop):
    head = (
        "#define BUMP i++\n#ifdef A\n#define LIMIT 4\n#else\n#define LIMIT 8\n#endif\n"
        "void bump(inout int k) { k++; }\nfloat spin(float v) { while (v < 1.0) v += 0.5; return v; }\n"
        "#define INNER for (int k = 0; k < 60000; k++) x += 1.0;\n"
        "#define MIDDLE INNER\n#define OUTER MIDDLE\n"
    )
    body = _guarded(head + "void f() {\n  " + loop + "\n}\n").split("void f() {\n", 1)[1]
    assert body.startswith("  for (") and "_ip_loop_ok() && (" in body.split("\n")[0]
    assert "_ip_loop_charge" not in body.split(")", 1)[0]


def test_loops_in_macro_bodies_are_guarded_in_the_macro():
    code = "#define REPEAT(n) for (int k = 0; k < n; k++)\n#define SPIN while (true) \\\n  { }\n"
    guarded = _guarded(code)
    assert "#define REPEAT(n) for (int k = 0; _ip_loop_ok() && ( k < n); k++, ++_ip_loops)" in guarded
    assert "#define SPIN for (; _ip_loop_ok() && (true); ++_ip_loops) \\\n  { }" in guarded


def test_code_without_loops_is_left_as_it_is():
    code = HEADER + "#define F(x) (x * 2.0) // for the record\nvoid f() { float dow = 1.0; }\n"
    assert guard_loops(code) == code


def test_the_zero_initialising_loops_of_the_webgl_adaptation_are_left_alone():
    code = "void f() { float a[4]; for (int _ip_z0 = 0; _ip_z0 < 4; ++_ip_z0) { a[_ip_z0] = 0.0; } }\n"
    assert guard_loops(HEADER + code) == HEADER + code


@pytest.mark.parametrize(
    "code",
    [
        "#define LOOP for\nvoid f() { LOOP (;;) {} }",  # a keyword without its parentheses
        "#define BEGIN do {\n#define END } while (x);\n",  # a do whose while is in another macro
        "void f() { while (bool b = g()) {} }",  # a declaration as condition
        "void f() { for (int i = 0;\n#ifdef A\n i < 2;\n#else\n i < 3;\n#endif\n i++) {} }",
    ],
)
def test_a_loop_the_scan_cannot_read_for_sure_is_refused(code):
    with pytest.raises(UnguardableLoop):
        _guarded(code)


def test_the_prelude_goes_after_the_extensions_and_line_numbers_stay_the_users():
    head = "#version 450\n#ifdef A\n#extension GL_X : enable\n#endif\n"
    code = head + "#define N 3\nvoid f() {\n  while (true) {}\n}\n"
    guarded = guard_loops(code, report=False)
    assert guarded.startswith(head)
    prelude, rest = guarded[len(head) :].split("#line 5\n")  # line 5 is `#define N 3`, as before
    assert "int _ip_loops = 0;" in prelude and "buffer" not in prelude  # GLSL 3.30: no storage buffer
    assert rest == "#define N 3\nvoid f() {\n  for (; _ip_loop_ok() && (true); ++_ip_loops) {}\n}\n"


def test_a_long_program_with_many_loops_is_guarded_in_linear_time():
    code = "void f() {\n" + "  for (int i = 0; i < 3; i++) { while (x < 1.0) x += 0.5; }\n" * 10000 + "}\n"
    started = time.perf_counter()
    guarded = _guarded(code)  # 600 KB: a scan that went back over the code for each loop takes minutes
    assert time.perf_counter() - started < 10.0
    assert guarded.count("_ip_loop_ok()") == 20000 + 1  # the loops, and its definition


# ---------------------------------------------------------------------------------------------
# On llvmpipe with the guard on


@pytest.fixture(scope="module")
def guarded_engine(engine):
    """An engine with the guard on, on the session's context (llvmpipe here)."""
    eng = Engine(engine.ctx, loop_guard="on")
    yield eng
    eng.release()


def _render(engine, program, size=(24, 16), frames=1, t=0.5):
    with engine.compile(program) as compiled:
        for i in range(frames):
            compiled.render(t + i / 60, size)
        return compiled.read_float(size).copy(), compiled.loop_guard_tripped()


@pytest.mark.parametrize("kind", sorted(ENDLESS_LOOPS))
def test_an_endless_loop_ends_quickly_and_says_the_guard_tripped(guarded_engine, kind):
    code = (MACRO if kind == "macro" else "") + _shader(ENDLESS_LOOPS[kind])
    started = time.perf_counter()
    picture, tripped = _render(guarded_engine, RenderProgram.single(code))
    assert time.perf_counter() - started < 10.0
    assert tripped is True
    most = 2 * LOOP_BUDGET if kind == "counted nest" else LOOP_BUDGET  # a counted loop runs to its end
    assert 0 < picture[0, 0, 0] <= most  # the loop ran until the budget ended it


def test_endless_loops_in_the_common_pass_and_in_a_buffer_trip_the_guard(guarded_engine):
    spin = "float spin(float v) { while (v > -1.0) { v += 1.0; } return v; }\n"
    show = "void mainImage(out vec4 c, in vec2 f) { c = texelFetch(iChannel0, ivec2(f), 0); }"
    calls_common = "void mainImage(out vec4 c, in vec2 f) { c = vec4(spin(0.0)); }"
    looping_buffer = _shader("for (;;) { v += 1.0; }")
    read_a = ({"channel": 0, "kind": "buffer", "ref": "Buffer A"},)
    programs = {
        "common": (
            RenderPassSource("Common", "common", spin),
            RenderPassSource("Image", "image", calls_common),
        ),
        "buffer": (
            RenderPassSource("Buffer A", "buffer", looping_buffer),
            RenderPassSource("Image", "image", show, read_a),
        ),
    }
    for name, passes in programs.items():
        _, tripped = _render(guarded_engine, RenderProgram(f"shadertoy:{name}", "shadertoy", passes))
        assert tripped is True, name


def test_ordinary_loops_render_the_same_pixels_with_and_without_the_guard(engine, guarded_engine):
    code = """float fbm(vec2 p) {
    float a = 0.5, s = 0.0;
    for (int i = 0; i < 5; i++) { s += a * sin(p.x) * cos(p.y); p *= 2.03; a *= 0.5; }
    return s;
}
void mainImage(out vec4 c, in vec2 f) {
    vec2 uv = f / iResolution.xy; float t = 0.0; int n = 0;
    while (t < 4.0 && n < 200) { t += 0.05 + 0.02 * fbm(uv * 3.0 + t); n++; if (n % 7 == 0) continue; }
    do { t -= 0.5; } while (t > 1.0);
    c = vec4(t, fbm(uv * 4.0 + iTime), float(n) / 200.0, 1.0);
}"""
    program = RenderProgram.single(code)
    plain, not_tripped = _render(engine, program, frames=2)
    guarded, tripped = _render(guarded_engine, program, frames=2)
    assert not_tripped is None and tripped is False
    assert np.array_equal(plain, guarded)


#: Loops as real programs write them (self-written): each must draw the same picture guarded.
CORPUS_LIKE = {
    "hash in a counted loop": """float h(float n) { return fract(sin(n) * 43758.5453); }
void mainImage(out vec4 c, in vec2 f) {
    float s = 0.0;
    for (int i = 0; i < 12; i++) s += h(float(i) * 17.13 + floor(f.x / 4.0));
    c = vec4(fract(s), h(f.y), 0.5, 1.0);
}""",
    "raymarch with break": """float map(vec3 p) { return length(p - vec3(0.0, 0.0, 3.0)) - 1.0; }
void mainImage(out vec4 c, in vec2 f) {
    vec3 rd = normalize(vec3((f - 0.5 * iResolution.xy) / iResolution.y, 1.0));
    float t = 0.0;
    for (int i = 0; i < 64; i++) { float d = map(rd * t); if (d < 0.001) break; t += d; }
    c = vec4(vec3(t / 5.0), 1.0);
}""",
    "float steps and a looping helper": """vec3 rings(vec2 p, float a, float b) {
    vec3 col = vec3(0.0);
    for (float r = a; r <= b; r += 0.25) col += vec3(smoothstep(0.02, 0.0, abs(length(p) - r)));
    return col;
}
void mainImage(out vec4 c, in vec2 f) {
    vec2 p = (f - 0.5 * iResolution.xy) / iResolution.y * 3.0;
    vec3 col = vec3(0.0);
    for (float k = 0.0; k < 1.0; k += 0.5) col += rings(p + k, 0.25, 1.0 + iTime * 0.1);
    c = vec4(col, 1.0);
}""",
    "macro loop, while and do": """#define TAPS 5
#define SUM(v, n) for (int k = 0; k < n; k++) v += cos(float(k) + iTime)
void mainImage(out vec4 c, in vec2 f) {
    float v = 0.0; SUM(v, TAPS);
    int n = int(f.x) % 7; float w = 0.0;
    while (n > 0) { w += 0.1; n--; }
    do { w *= 0.9; } while (w > 0.5);
    c = vec4(fract(v), w, float(int(f.y) % 3) / 2.0, 1.0);
}""",
}


@pytest.mark.parametrize("name", sorted(CORPUS_LIKE))
def test_corpus_like_loops_draw_the_same_8bit_picture_guarded(engine, guarded_engine, name):
    program = RenderProgram.single(CORPUS_LIKE[name])
    fragment = build_plan(program).passes[0].fragment
    assert guard_loops(fragment) != fragment  # the guard did rewrite it
    plain, not_tripped = _render(engine, program, size=(64, 48), t=2.5)
    guarded, tripped = _render(guarded_engine, program, size=(64, 48), t=2.5)
    assert not_tripped is None and tripped is False
    assert np.array_equal(_as_8bit(plain), _as_8bit(guarded))


def _as_8bit(picture: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.nan_to_num(picture) * 255.0), 0, 255).astype(np.uint8)


def test_the_guard_without_a_report_still_bounds_every_loop(guarded_engine, monkeypatch):
    """A driver whose GLSL 3.30 has no storage buffers gets every loop bounded, and says so."""
    import render.engine

    monkeypatch.setattr(render.engine, "guard_can_report", lambda ctx: False)
    engine = Engine(guarded_engine.ctx, loop_guard="on")
    try:
        assert engine.renderer_string.endswith(" | loop guard, unreported")
        picture, tripped = _render(engine, RenderProgram.single(_shader(ENDLESS_LOOPS["while"])))
    finally:
        engine.release()
    assert tripped is None and picture[0, 0, 0] == LOOP_BUDGET


def test_the_drivers_line_numbers_are_the_users_with_the_guard_on(guarded_engine):
    code = "void mainImage(out vec4 c, in vec2 f) {\n    for (;;) {}\n    c = vec4(1.0)\n}"
    with pytest.raises(ShaderError) as info:
        guarded_engine.compile(RenderProgram.single(code))
    assert "0:4(" in info.value.log


def test_an_unguardable_program_is_refused_as_unsupported(guarded_engine):
    code = "#define FOREVER for\nvoid mainImage(out vec4 c, in vec2 f) { FOREVER (;;) {} c = vec4(1.0); }"
    with pytest.raises(LoopGuardRefused) as info:
        guarded_engine.compile(RenderProgram.single(code))
    assert info.value.status == "unsupported" and "loop guard" in info.value.log


def test_validation_of_a_tripping_program_is_a_timeout_that_says_the_guard_tripped(guarded_engine):
    item = shadertoy_item("spin", _shader(ENDLESS_LOOPS["do-while"]))
    result = validate_one(guarded_engine, item, sizes=((16, 16),), times=(0.5,))
    assert result["status"] == "timeout" and result["log"] == TRIPPED_LOG
    assert result["renderer"].endswith(" | loop guard")


def test_render_validate_workers_take_the_guard_from_the_environment(monkeypatch):
    monkeypatch.setenv("IMAGEPROGRAMS_LOOP_GUARD", "on")
    options = ValidateOptions(workers=1, sizes=((16, 16),), times=(0.5,), compile_deadline=20.0)
    items = [shadertoy_item("spin", _shader(ENDLESS_LOOPS["for"])), shadertoy_item("calm", GOOD)]
    with validation_pool(options) as pool:
        results = {r["program"]: r for r in pool.run(items, options.task_params())}
    assert results["shadertoy:spin"]["status"] == "timeout"
    assert results["shadertoy:spin"]["log"] == TRIPPED_LOG
    assert results["shadertoy:calm"]["status"] == "ok"
    assert results["shadertoy:calm"]["renderer"].endswith(" | loop guard")


def test_the_guard_is_off_on_llvmpipe_by_default_and_a_bad_setting_is_refused(engine, monkeypatch):
    assert engine.device.software and not engine.loop_guard
    assert "loop guard" not in engine.renderer_string
    monkeypatch.setenv("IMAGEPROGRAMS_LOOP_GUARD", "sometimes")
    with pytest.raises(Exception, match="loop guard setting"):
        Engine(engine.ctx)


def test_render_validate_loop_guard_on_stores_a_timeout_that_says_so(tmp_path, capsys, monkeypatch):
    import json

    from corpus.db import open_catalogue
    from corpus.programs import find_program
    from corpus.validations import latest_program_validation, validation_counts
    from harvest.importing import import_path
    from tests.render.helpers import run_render

    monkeypatch.setenv("IMAGEPROGRAMS_LOOP_GUARD", "off")  # restored after the test: the command sets it
    dump = tmp_path / "dump.jsonl"
    codes = {"spin": _shader(ENDLESS_LOOPS["while"]), "calm": GOOD}
    dump.write_text("".join(json.dumps({"id": k, "image_code": c}) + "\n" for k, c in codes.items()))
    db = str(tmp_path / "c.db")
    cat = open_catalogue(db, create=True)
    import_path(cat, dump)
    args = ["validate", "--db", db, "--workers", "1", "--sizes", "16,256", "--loop-guard", "on"]
    code, out, err = run_render(args, capsys)
    assert code == 0, err
    assert "renderer: " in out and out.rstrip().splitlines()[-2].endswith("| loop guard")
    assert validation_counts(cat, out.split("renderer: ")[1].splitlines()[0]) == {"ok": 1, "timeout": 1}
    with cat.session() as s:
        stored = latest_program_validation(s, find_program(s, "shadertoy:spin"))
    assert stored["log"] == TRIPPED_LOG
    cat.close()

    code, _, err = run_render(["validate", "--db", db, "--loop-guard", "sometimes"], capsys)
    assert code == 2 and "auto, on, off" in err
