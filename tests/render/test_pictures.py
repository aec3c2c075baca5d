"""Looking at programs: PNG frames, contact sheets that survive hostile shaders, videos, bench."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from corpus.errors import ExitCode
from render import sheet as render_sheet
from render.pictures import Stepper, bench, frames, video
from render.program import RenderPassSource, RenderProgram
from render.sheet import contact_sheet
from tests.render.helpers import COUNTER_BUFFER, ENDLESS, SHOW_BUFFER, run_render

WAVES = """void mainImage(out vec4 c, in vec2 f) {
    vec2 uv = f / iResolution.xy;
    c = vec4(0.5 + 0.5 * sin(6.0 * uv.x + 3.0 * iTime), uv.y, 0.5 + 0.5 * cos(2.0 * iTime), 1.0);
}"""
BROKEN = "void mainImage(out vec4 c, in vec2 f) { c = vec4(1.0) }"  # the missing semicolon
BUFFER_A = {"channel": 0, "kind": "buffer", "ref": "Buffer A"}


def program(name: str, code: str) -> RenderProgram:
    return RenderProgram.single(code, key=f"shadertoy:{name}")


def test_frames_writes_one_png_per_time_at_the_size_asked(engine, tmp_path):
    paths = frames(engine, program("waves", WAVES), (48, 32), [0.0, 1.5, 3.0], tmp_path / "out")
    assert [p.name for p in paths] == [
        "shadertoy-waves_000_t0s.png",
        "shadertoy-waves_001_t1.5s.png",
        "shadertoy-waves_002_t3s.png",
    ]
    pictures = [np.asarray(Image.open(p)) for p in paths]
    assert all(p.shape == (32, 48, 3) for p in pictures)
    assert not np.array_equal(pictures[0], pictures[1]) and not np.array_equal(pictures[1], pictures[2])


def test_frames_of_a_broken_program_raise_the_drivers_error(engine, tmp_path):
    from render.engine import ShaderError

    with pytest.raises(ShaderError) as err:
        frames(engine, program("broken", BROKEN), (16, 16), [0.0], tmp_path)
    assert err.value.status == "compile_error" and err.value.hint


def test_feedback_programs_are_stepped_through_the_frames_before_the_time_asked(engine):
    """At t = 1 s a browser has drawn about 30 frames (here at 30 fps) of a feedback program."""
    buffer = RenderPassSource("Buffer A", "buffer", COUNTER_BUFFER, (BUFFER_A,))
    counter = RenderProgram(
        "shadertoy:counter",
        "shadertoy",
        (buffer, RenderPassSource("Image", "image", SHOW_BUFFER, (BUFFER_A,))),
    )
    with engine.compile(counter) as compiled:
        stepper = Stepper(compiled, (8, 8), warmup_fps=30.0)
        stepper.render(1.0)
        assert compiled.frame == 31  # 0, 1/30 … 29/30, then 1.0
        assert compiled.read_float((8, 8))[0, 0, 0] == 31.0
        stepper.render(1.0 + 1.0 / 30.0)  # the next frame: nothing in between
        assert compiled.frame == 32
        stepper.render(0.5)  # back in time: feedback starts again
        assert compiled.frame == 16
    with engine.compile(program("waves", WAVES)) as compiled:
        Stepper(compiled, (8, 8)).render(5.0)
        assert compiled.frame == 1  # no feedback, nothing to step through


def test_a_sheet_with_a_broken_and_an_endless_shader_finishes_with_labelled_placeholders(tmp_path):
    programs = [
        program("waves", WAVES),
        program("broken", BROKEN),
        program("endless", ENDLESS),
        program("waves2", WAVES.replace("6.0 *", "9.0 *")),
    ]
    deadline = 2.0
    started = time.monotonic()
    report = contact_sheet(
        None,
        programs,
        (64, 48),
        [0.5, 1.0],
        columns=2,
        out_path=tmp_path / "sheet.png",
        statuses={"shadertoy:waves": "ok"},
        deadline=deadline,
        workers=2,
    )
    assert time.monotonic() - started < 60
    assert report.tiles == 4
    assert report.failed == {"shadertoy:broken": "compile_error", "shadertoy:endless": "timeout"}
    sheet = np.asarray(Image.open(report.path))
    tile_w, tile_h = 2 * 64, 48
    rows = sheet.shape[0] // 2
    assert sheet.shape[1] == 2 * (tile_w + 4) + 4 and sheet.shape[0] > 2 * tile_h
    # tiles in the order given: a picture top left, placeholders top right and bottom left
    waves_tile = sheet[4 : 4 + tile_h, 4 : 4 + tile_w]
    broken_tile = sheet[4 : 4 + tile_h, tile_w + 8 : 2 * tile_w + 8]
    endless_tile = sheet[rows + 2 : rows + 2 + tile_h, 4 : 4 + tile_w]
    assert len(np.unique(waves_tile.reshape(-1, 3), axis=0)) > 50
    assert tuple(broken_tile[1, -2]) == (56, 40, 24)  # placeholder background …
    assert (broken_tile[:16] > 150).any()  # … with its status written on it
    assert tuple(endless_tile[-2, 1]) == (70, 24, 24)
    # every tile has its SOURCE:ID label under it (light text on the dark sheet)
    for x in (4, tile_w + 8):
        assert (sheet[4 + tile_h + 2 : 4 + tile_h + 14, x : x + tile_w] > 200).any()


def test_video_writes_a_gif_and_an_mp4_with_every_frame(engine, tmp_path):
    import imageio_ffmpeg

    waves = program("waves", WAVES)
    gif = video(engine, waves, (32, 24), seconds=1.0, fps=8, out_path=tmp_path / "w.gif")
    with Image.open(gif) as im:
        assert im.size == (32, 24) and im.n_frames == 8
    mp4 = video(engine, waves, (32, 24), seconds=1.0, fps=8, out_path=tmp_path / "w.mp4")
    reader = imageio_ffmpeg.read_frames(str(mp4))
    meta = next(reader)
    assert tuple(meta["size"]) == (32, 24)
    assert sum(1 for _ in reader) == 8


def test_video_refuses_an_unknown_suffix(engine, tmp_path):
    from corpus.errors import UsageProblem

    with pytest.raises(UsageProblem, match="mp4 or"):
        video(engine, program("waves", WAVES), (16, 16), 1.0, 4, tmp_path / "w.avi")


def test_video_with_odd_sides_writes_what_it_reports_or_refuses(tmp_path, capsys):
    shader = tmp_path / "s.glsl"
    shader.write_text(WAVES)
    args = ["video", "--code", str(shader), "--size", "33x21", "--seconds", "0.25", "--fps", "8"]
    code, out, _ = run_render([*args, "--out", str(tmp_path / "w.gif")], capsys)
    with Image.open(tmp_path / "w.gif") as im:
        assert code == 0 and "33x21" in out and im.size == (33, 21)
    code, _, err = run_render([*args, "--out", str(tmp_path / "w.mp4")], capsys)
    assert code == 2 and "needs even sides, and 33x21 has an odd one" in err
    assert "hint: give --size 34x22, or write a .gif" in err and not (tmp_path / "w.mp4").exists()


def test_bench_reports_a_positive_rate_per_size_and_skips_what_does_not_compile(engine):
    figures = bench(
        engine, [program("waves", WAVES), program("broken", BROKEN)], [(16, 16), (32, 32)], frames=5
    )
    assert figures["programs"] == 1 and figures["skipped"] == {"shadertoy:broken": "compile_error"}
    assert set(figures["sizes"]) == {"16x16", "32x32"}
    assert all(s["images"] == 5 and s["images_per_second"] > 0 for s in figures["sizes"].values())


@pytest.fixture(scope="module")
def shaders21k_catalogue(tmp_path_factory):
    from corpus.db import open_catalogue
    from harvest.importing import import_path
    from tests.conftest import EXAMPLES

    path = tmp_path_factory.mktemp("pictures") / "c.db"
    cat = open_catalogue(str(path), create=True)
    import_path(cat, EXAMPLES / "shaders21k")
    cat.close()
    return str(path)


def test_cli_frames_video_sheet_and_bench_on_a_catalogue(shaders21k_catalogue, tmp_path, capsys):
    import json

    db = ["--db", shaders21k_catalogue]
    code, out, _ = run_render(
        [
            "frames",
            "shadertoy:ipEx01",
            *db,
            "--size",
            "16",
            "--times",
            "0,1",
            "--out",
            str(tmp_path),
            "--json",
        ],
        capsys,
    )
    files = json.loads(out)["files"]
    assert code == 0 and len(files) == 2 and all(Image.open(f).size == (16, 16) for f in files)

    gif = tmp_path / "v.gif"
    args = [
        "video",
        "shadertoy:ipEx04",
        *db,
        "--out",
        str(gif),
        "--seconds",
        "0.5",
        "--fps",
        "6",
        "--size",
        "16",
    ]
    code, out, _ = run_render(args, capsys)
    assert code == 0 and "3 frames" in out and Image.open(gif).n_frames == 3

    sheet = tmp_path / "sheet.png"
    args = ["sheet", *db, "--source", "twigl", "--limit", "3", "--size", "24", "--out", str(sheet), "--json"]
    code, out, _ = run_render(args, capsys)
    assert code == 0 and json.loads(out)["tiles"] == 3 and sheet.exists()
    # the credits beside it: the three programs, tile by tile, with where they came from
    credits = tmp_path / "sheet.credits.md"
    assert json.loads(out)["credits"] == str(credits)
    listed = [line for line in credits.read_text().splitlines() if line.startswith("- ")]
    assert [line.split(":", 1)[0] for line in listed] == ["- 1", "- 2", "- 3"]
    assert all("(twigl:" in line and ", licence " in line for line in listed), listed

    args = ["bench", *db, "--status", "unvalidated", "--source", "twigl", "--limit", "2"]
    code, out, _ = run_render([*args, "--sizes", "16,24", "--frames", "2", "--json"], capsys)
    figures = json.loads(out)
    assert code == 0 and figures["programs"] == 2
    assert all(entry["images_per_second"] > 0 for entry in figures["sizes"].values())


def test_cli_errors_say_what_to_do(shaders21k_catalogue, capsys):
    code, _, err = run_render(["frames", "--db", shaders21k_catalogue], capsys)
    assert code == 2 and "--code FILE" in err
    code, _, err = run_render(["frames", "shadertoy:ipEx08", "--db", shaders21k_catalogue], capsys)
    assert code == 10 and "compile error" in err and "hint:" in err
    code, _, err = run_render(["bench", "--db", shaders21k_catalogue], capsys)  # nothing validated yet
    assert code == 5 and "render validate" in err


def test_an_output_path_under_a_file_is_an_error_not_a_traceback(shaders21k_catalogue, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    shader = tmp_path / "s.glsl"
    shader.write_text("void mainImage(out vec4 c, in vec2 f) { c = vec4(1.0); }")
    code_args = ["--code", str(shader), "--size", "8"]
    for args in (
        ["frames", *code_args, "--out", str(afile / "x")],
        ["frames", *code_args, "--out", str(afile)],
        ["video", *code_args, "--out", str(afile / "x.gif"), "--seconds", "0.1"],
        ["sheet", "--db", shaders21k_catalogue, "--limit", "2", "--out", str(afile / "x.png")],
        ["sheet", "--db", shaders21k_catalogue, "--limit", "2", "--out", str(tmp_path / "sheet.txt")],
    ):
        code, _, err = run_render(args, capsys)
        assert code == 2, (args, err)
        assert err.startswith(("error: --out ", "error: cannot ")) and "\nhint: " in err, err
        assert "Traceback" not in err
    assert afile.read_text() == "not a folder"
    assert not list(tmp_path.glob("*.credits.md"))  # a refused sheet writes no credits either
    # the credits' own path is checked before any tile renders, like the picture's
    (tmp_path / "taken.credits.md").mkdir()
    args = ["sheet", "--db", shaders21k_catalogue, "--limit", "2", "--out", str(tmp_path / "taken.png")]
    code, _, err = run_render(args, capsys)
    assert code == 2 and "taken.credits.md is a folder" in err and not (tmp_path / "taken.png").exists()


@pytest.mark.parametrize("command", ["frames", "video"])
def test_the_watchdog_forks_before_the_engine_starts_the_drivers_threads(
    command, tmp_path, monkeypatch, capsys
):
    import os

    import render.engine

    events: list[str] = []
    real_fork, real_engine = os.fork, render.engine.Engine

    def recording_fork() -> int:
        events.append("fork")
        return real_fork()

    class RecordingEngine(real_engine):
        def __init__(self, *args, **kwargs) -> None:
            events.append("engine")
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(os, "fork", recording_fork)
    monkeypatch.setattr(render.engine, "Engine", RecordingEngine)
    shader = tmp_path / "s.glsl"
    shader.write_text(WAVES)
    out = tmp_path / ("v.gif" if command == "video" else "frames")
    code, _, err = run_render([command, "--code", str(shader), "--size", "8", "--out", str(out)], capsys)
    assert code == 0, err
    assert events == ["fork", "engine"]


def test_a_hanging_shader_stops_render_frames_with_a_message(tmp_path):
    """Rendering in the command's own process is guarded by a watchdog that kills it."""
    import subprocess
    import sys

    shader = tmp_path / "endless.glsl"
    shader.write_text(ENDLESS)
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "render.cli", "frames", "--code", str(shader), "--size", "32"]
        + ["--deadline", "2", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -9 and time.monotonic() - started < 60
    assert 128 + 9 == ExitCode.HUNG  # what a shell reports for it: a code of the README's table
    assert "error: render frames file:endless.glsl drew nothing for 2 s" in proc.stderr
    assert "exit code 137" in proc.stderr and "hint: check the program with `render validate`" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_unknown_dialect_of_code_is_a_usage_error_listing_the_dialects(tmp_path, capsys):
    from corpus.records import DIALECTS

    shader = tmp_path / "s.glsl"
    shader.write_text("void mainImage(out vec4 o, in vec2 f) { o = vec4(1.0); }\n")
    code, _, err = run_render(
        ["frames", "--code", str(shader), "--dialect", "bogus", "--out", str(tmp_path / "f")], capsys
    )
    assert (code, err.splitlines()) == (
        2,
        ["error: unknown dialect 'bogus'", f"hint: use one of: {', '.join(DIALECTS)}"],
    )
    assert not (tmp_path / "f").exists()


def test_a_shader_the_driver_refuses_gets_a_hint_that_says_what_to_do(tmp_path, capsys):
    shader = tmp_path / "s.glsl"
    shader.write_text("void mainImage(out vec4 o, in vec2 f) { o = vec4(1.0) }\n")
    code, _, err = run_render(["frames", "--code", str(shader), "--out", str(tmp_path / "f")], capsys)
    first, hint = err.splitlines()
    assert code == 10 and first.startswith("error: Image: compile error: ")
    assert "render frames shows the same error" not in hint  # said by render frames itself
    assert hint.startswith("hint: ") and "--code" in hint


def test_sheet_captions_of_several_lines_are_wrapped_under_the_tile(engine, tmp_path):
    """A caption (e.g. the reasons a program was not vetted) takes as many lines as it needs,
    wrapped to the tile's width, up to three; the labels grow to hold them."""
    waves = [program("waves", WAVES)]

    def drawn(caption: str) -> np.ndarray:
        report = contact_sheet(
            engine,
            waves,
            (96, 32),
            [0.5],
            1,
            tmp_path / "s.png",
            statuses={"shadertoy:waves": caption},
            isolated=False,
        )
        return np.asarray(Image.open(report.path))

    one = drawn("ok")
    reasons = "canvas coverage 0.01 < 0.02\ntemporal change 0.0001 < 0.0005"  # wraps to 3+ lines
    three = drawn(reasons)
    _, line = render_sheet._font(96)
    assert three.shape[0] - one.shape[0] == 2 * line and three.shape[1] == one.shape[1]
    last_line = three[4 + 32 + 2 + 3 * line : 4 + 32 + 2 + 4 * line]
    assert (last_line > 200).any()  # the third caption line is written
    assert len(render_sheet._wrap(reasons, 96, render_sheet._font(96)[0], 9)) >= 3
