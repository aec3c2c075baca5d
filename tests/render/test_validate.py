"""``render validate``: worker processes under deadlines, statuses, resumability."""

from __future__ import annotations

import os
import re
import signal
import threading
import time

import pytest

from corpus.db import open_catalogue
from corpus.validations import validation_counts
from harvest.importing import import_path
from render.program import RenderProgram
from render.validate import ValidateOptions, validate, validation_pool
from tests.conftest import EXAMPLES, SHARED_SAMPLES, needs_samples
from tests.render.conftest import EXAMPLE_PATHS, expected_ok
from tests.render.helpers import ENDLESS, EXPLODING, GOOD, NAN, shadertoy_item

FAST = ValidateOptions(workers=2, sizes=((32, 32),), times=(0.5, 2.0))


@pytest.fixture(scope="module")
def examples_catalogue(tmp_path_factory):
    cat = open_catalogue(str(tmp_path_factory.mktemp("v") / "c.db"), create=True)
    for name in EXAMPLE_PATHS:
        import_path(cat, EXAMPLES / name)
    yield cat
    cat.close()


def killed_after(log: str) -> float:
    return float(re.search(r"killed after ([\d.]+) s", log).group(1))


def test_bundled_examples_land_in_the_status_they_were_written_for(examples_catalogue, expected):
    options = ValidateOptions(workers=2, compile_deadline=4.0, frame_deadline=4.0)
    results: dict[str, dict] = {}
    report = validate(
        examples_catalogue, options=options, progress=lambda r: results.update({r["program"]: r})
    )
    assert report.programs == len(results) == len(expected)  # no two bundled programs share their code
    for key, want in expected.items():
        status = results[key]["status"]
        assert status == {"texture": "ok"}.get(want["expect"], want["expect"]), (key, results[key].get("log"))
    ok = results["shadertoy:ipEx01"]
    assert ok["compile_ms"] > 0 and ok["first_frame_ms"] > 0
    assert [(p["width"], p["height"]) for p in ok["profiles"]] == [(64, 64), (256, 256)]
    assert all(p["frame_ms_median"] <= p["frame_ms_p90"] for p in ok["profiles"])
    assert results["shadertoy:ipEx06"]["standins"][0]["standin"] == "noise"
    assert "error" in results["shadertoy:ipEx08"]["log"]
    assert killed_after(results["shadertoy:ipEx09"]["log"]) <= options.compile_deadline + 1.0
    counts = validation_counts(examples_catalogue)
    assert counts["ok"] == expected_ok(expected) and "unvalidated" not in counts

    # A second run finds nothing left to do for this renderer.
    again = validate(examples_catalogue, options=options)
    assert again.programs == 0


def test_hostile_shaders_are_killed_within_the_deadline_and_the_batch_carries_on():
    options = ValidateOptions(**{**FAST.__dict__, "compile_deadline": 3.0, "frame_deadline": 3.0})
    items = [
        shadertoy_item("endless", ENDLESS),
        shadertoy_item("good1", GOOD),
        shadertoy_item("exploding", EXPLODING),
        shadertoy_item("nan", NAN),
    ]
    items.append(shadertoy_item("good2", GOOD.replace("0.5 +", "0.25 +")))
    started = time.monotonic()
    with validation_pool(options) as pool:
        results = {r["program"].split(":")[1]: r for r in pool.run(items, options.task_params())}
        report = pool.stats
    assert {k: r["status"] for k, r in results.items()} == {
        "endless": "timeout",
        "exploding": "timeout",
        "nan": "nan",
        "good1": "ok",
        "good2": "ok",
    }
    for name in ("endless", "exploding"):
        assert killed_after(results[name]["log"]) <= options.compile_deadline + 1.0
    assert report.timeouts_killed == 2 and report.workers_started >= 4  # each kill replaced its worker
    assert time.monotonic() - started < 60


def test_a_worker_killed_from_outside_is_a_crash_and_is_replaced():
    items = [
        shadertoy_item("victim", EXPLODING),
        shadertoy_item("after1", GOOD),
        shadertoy_item("after2", GOOD.replace("0.5 +", "0.3 +")),
    ]
    options = ValidateOptions(**{**FAST.__dict__, "compile_deadline": 60.0, "workers": 1})
    with validation_pool(options) as pool:

        def assassin() -> None:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                for worker in list(pool.workers):
                    if worker.item and worker.item["code_sha256"] == "victim" and worker.phase == "compile":
                        time.sleep(0.3)
                        os.kill(worker.pid, signal.SIGKILL)
                        return
                time.sleep(0.05)

        thread = threading.Thread(target=assassin)
        thread.start()
        results = {r["code_sha256"]: r for r in pool.run(items, options.task_params())}
        thread.join()
        assert pool.stats.crashes == 1
    assert results["victim"]["status"] == "crash"
    assert "signal 9" in results["victim"]["log"]
    assert results["after1"]["status"] == results["after2"]["status"] == "ok"


def test_workers_above_the_memory_bound_are_recycled_between_programs():
    options = ValidateOptions(**{**FAST.__dict__, "workers": 1, "memory_limit_mb": 1})
    with validation_pool(options) as pool:
        items = [shadertoy_item(f"g{i}", GOOD.replace("0.5 +", f"0.{i} +")) for i in range(3)]
        results = list(pool.run(items, options.task_params()))
        assert pool.stats.recycled == 3
    assert [r["status"] for r in results] == ["ok"] * 3


def test_validation_resumes_where_it_stopped(examples_catalogue_fresh, expected):
    cat = examples_catalogue_fresh
    options = ValidateOptions(workers=2, sizes=((32, 32),), times=(0.5,), compile_deadline=3.0, limit=10)
    first = validate(cat, options=options)
    assert first.programs == 10
    options.limit = None
    rest = validate(cat, options=options)
    assert rest.programs == len(expected) - 10
    counts = validation_counts(cat)
    assert sum(counts.values()) == len(expected) and "unvalidated" not in counts


@pytest.fixture
def examples_catalogue_fresh(tmp_path):
    cat = open_catalogue(str(tmp_path / "c.db"), create=True)
    for name in EXAMPLE_PATHS:
        import_path(cat, EXAMPLES / name)
    yield cat
    cat.close()


def test_work_items_round_trip_into_render_programs(examples_catalogue):
    from corpus.validations import load_program

    program = RenderProgram.from_item(load_program(examples_catalogue, "shadertoy:ipEx04"))
    assert [(p.name, p.type) for p in program.passes] == [
        ("Common", "common"),
        ("Buffer A", "buffer"),
        ("Image", "image"),
    ]
    assert program.dialect == "shadertoy" and len(program.code_sha256) == 64
    assert RenderProgram.from_item(program.to_item()) == program


def test_ctrl_c_stops_render_validate_cleanly_and_says_what_was_kept(tmp_path):
    """Ctrl-C reaches the whole process group (the command and its workers): no traceback from
    anyone, exit 130, the results that came back are stored, and no worker is left behind."""
    import json
    import sqlite3
    import subprocess
    import sys

    from tests.conftest import wait_for_count

    dump = tmp_path / "dump.jsonl"
    # more good programs than a batch holds (25), so some are stored while the endless ones run
    codes = [GOOD.replace("0.5 +", f"0.{i:02d} +") for i in range(30)] + [
        ENDLESS.replace("1.1", f"1.{i + 2}") for i in range(2)
    ]
    dump.write_text(
        "".join(
            json.dumps({"id": f"p{i}", "name": f"p{i}", "author": "t", "image_code": c}) + "\n"
            for i, c in enumerate(codes)
        )
    )
    db = tmp_path / "c.db"
    cat = open_catalogue(str(db), create=True)
    import_path(cat, dump)
    cat.close()
    proc = subprocess.Popen(
        [sys.executable, "-m", "render.cli", "validate", "--db", str(db), "--workers", "2"]
        + ["--deadline", "120", "--sizes", "16"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a shell gives a command
    )
    try:
        wait_for_count(db, "SELECT count(*) FROM validation", 1, timeout=90)
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    stored = int(re.search(r"^error: interrupted: (\d+) programs validated and stored", err, re.M).group(1))
    assert "hint: run the same command again" in err
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    assert con.execute("SELECT count(*) FROM validation").fetchone()[0] == stored >= 1
    con.close()
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):  # no worker outlived the command
        os.killpg(proc.pid, 0)


def test_workers_0_is_refused_where_untrusted_shaders_must_be_sandboxed(examples_catalogue, capsys):
    from render.sandbox import cores
    from tests.render.helpers import run_render

    db = examples_catalogue.engine.url.database
    for args in (["validate", "--db", db, "--workers", "0"], ["sheet", "--db", db, "--workers", "0"]):
        code, _, err = run_render(args, capsys)
        assert code == 2 and "--workers 0 would render untrusted shaders in this process" in err, err
        assert "hint: give --workers 1 or more, or leave it out for one per core" in err
    assert ValidateOptions().workers is None and ValidateOptions().worker_count() == cores()
    import typer

    import render.cli

    commands = typer.main.get_command(render.cli.app).commands
    for command in ("validate", "sheet"):
        workers = next(p for p in commands[command].params if p.name == "workers")
        assert workers.default is None and "default: one per core" in workers.help


def test_render_validate_reports_progress_through_the_shared_progress_with_its_total(
    tmp_path, monkeypatch, capsys
):
    """corpus.cliutils.progress draws a bar on a terminal and plain lines when piped."""
    import contextlib
    import json

    import render.cli
    from tests.render.helpers import run_render

    calls: list[tuple[str, int | None]] = []
    advanced: list[int] = []

    @contextlib.contextmanager
    def recording_progress(description: str, total: int | None = None):
        calls.append((description, total))
        yield advanced.append

    monkeypatch.setattr(render.cli, "progress", recording_progress)
    dump = tmp_path / "dump.jsonl"
    codes = [GOOD.replace("0.5 +", f"0.{i} +") for i in range(3)]
    dump.write_text("".join(json.dumps({"id": f"p{i}", "image_code": c}) + "\n" for i, c in enumerate(codes)))
    cat = open_catalogue(str(tmp_path / "c.db"), create=True)
    import_path(cat, dump)
    cat.close()
    code, _, err = run_render(
        ["validate", "--db", str(tmp_path / "c.db"), "--workers", "1", "--sizes", "16"], capsys
    )
    assert code == 0, err
    assert calls == [("validating", 3)] and advanced == [1, 1, 1]


@needs_samples
def test_real_shadertoy_programs_from_the_shared_samples_validate(tmp_path):
    """Real programs (read from ../shared/samples, never copied): nearly all render; none crashes."""
    from corpus.validations import STATUSES

    cat = open_catalogue(str(tmp_path / "c.db"), create=True)
    import_path(cat, SHARED_SAMPLES / "shadertoy-api" / "2024-07.jsonl")
    import_path(cat, SHARED_SAMPLES / "shadertoy-site" / "shaders")
    options = ValidateOptions(workers=2, sizes=((32, 32),), times=(0.5,), compile_deadline=8.0, limit=24)
    results: list[dict] = []
    report = validate(cat, options=options, progress=results.append)
    assert report.programs == len(results) == 24
    statuses = [r["status"] for r in results]
    assert set(statuses) <= set(STATUSES)
    assert "crash" not in statuses
    assert statuses.count("compile_error") + statuses.count("link_error") <= 2, [
        (r["program"], r["log"]) for r in results if r["status"].endswith("_error")
    ]
    assert statuses.count("ok") >= 18
    cat.close()


def test_an_interrupted_validation_with_again_says_what_running_it_again_does():
    from render.validate import ValidationInterrupted

    plain, again = ValidationInterrupted(5, 2), ValidationInterrupted(5, 2, again=True)
    assert plain.hint == "run the same command again to validate the rest"
    assert "with --again to start over" in again.hint and "without --again" in again.hint


#: Runs ``render validate`` as the console script does, but logs each result as the command
#: receives it from a worker (before storing it): a program validated twice is logged twice.
_LOGGING_VALIDATE = """
import sys
import render.cli
import render.validate

log_path = sys.argv[1]
make_pool = render.validate.validation_pool


def logging_pool(options, report=None):
    pool = make_pool(options, report)
    run = pool.run

    def logged(items, params):
        for result in run(items, params):
            with open(log_path, "a") as log:
                log.write(result["program"] + "\\n")
            yield result

    pool.run = logged
    return pool


render.validate.validation_pool = logging_pool
sys.argv = ["render", *sys.argv[2:]]
sys.exit(render.cli.main())
"""


def test_a_validation_killed_with_sigkill_resumes_with_the_same_command_losing_and_repeating_nothing(
    tmp_path,
):
    """SIGKILL to the command and its workers, at start-up and twice mid-run: the same command run
    again validates exactly the rest. Each stored result stays as it was (never validated again);
    only the programs in flight at a kill (at most one per worker) are validated again."""
    import json
    import sqlite3
    import subprocess
    import sys

    n, workers = 40, 2
    dump = tmp_path / "dump.jsonl"
    codes = [GOOD.replace("0.5 +", f"0.{i:02d} +") for i in range(n)]
    dump.write_text("".join(json.dumps({"id": f"p{i}", "image_code": c}) + "\n" for i, c in enumerate(codes)))
    db, log = tmp_path / "c.db", tmp_path / "validated.log"
    cat = open_catalogue(str(db), create=True)
    import_path(cat, dump)
    cat.close()
    script = tmp_path / "logging_validate.py"
    script.write_text(_LOGGING_VALIDATE)
    command = [sys.executable, str(script), str(log), "validate", "--db", str(db), "--workers", str(workers)]
    command += ["--sizes", "16"]

    def logged() -> list[str]:
        return log.read_text().split() if log.exists() else []

    def stored() -> dict[str, int]:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        rows = dict(con.execute("SELECT code_sha256, id FROM validation").fetchall())
        con.close()
        return rows

    def results_logged(at_least: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while len(logged()) < at_least and time.monotonic() < deadline:
            time.sleep(0.05)

    kept: dict[str, int] = {}
    kills = 0
    for until in (
        lambda: time.sleep(0.3),  # before any worker has said hello
        lambda: results_logged(len(logged()) + 7),  # mid-run, by what the command has received
        lambda: results_logged(len(logged()) + 11),
    ):
        proc = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        try:
            until()
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        kills += 1
        now = stored()
        assert {k: now[k] for k in kept} == kept  # what was stored before stays as it was
        kept = now
    assert 0 < len(set(logged())) < n  # the kills came mid-run
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    final = stored()
    assert len(final) == n and {k: final[k] for k in kept} == kept  # nothing lost, nothing redone
    assert validation_counts(open_catalogue(str(db))) == {"ok": n}
    validated = logged()
    assert len(set(validated)) == n
    twice = [p for p in set(validated) if validated.count(p) > 1]
    assert len(twice) <= workers * kills, twice  # only what was in flight at a kill


#: About 2-10 ms a 64² frame on llvmpipe: slow enough for a tiny frame-time cap, quick to render.
SLOW = """void mainImage(out vec4 c, in vec2 f) {
    float v = f.x * 0.01 + iTime;
    for (int i = 0; i < 400; i++) { v = sin(v * 1.3 + 0.7); }
    c = vec4(fract(v + 3.3 * iTime), f / iResolution.xy, 1.0);
}"""


def test_a_size_whose_frames_are_over_the_cap_stops_after_three_and_says_so(engine):
    from render.profiling import MIN_TIMED_FRAMES, validate_one

    item = shadertoy_item("slow", SLOW)
    sizes, times = ((32, 32), (64, 64)), (0.5, 1.5, 3.0, 6.0)
    full = validate_one(engine, item, sizes, times)
    capped = validate_one(engine, item, sizes, times, frame_ms_cap=1e-6)
    roomy = validate_one(engine, item, sizes, times, frame_ms_cap=1e6)
    assert full["status"] == capped["status"] == roomy["status"] == "ok"
    # each time sample twice at the smallest size (temporal change), once at the larger one
    assert [p["stats"]["frames"] for p in full["profiles"]] == [2 * len(times), len(times)]
    assert [p["stats"]["frames"] for p in roomy["profiles"]] == [2 * len(times), len(times)]
    three = validate_one(
        engine, item, sizes, times, frame_ms_cap=1e-6, slow_size_frames=None, paired_sizes=None
    )
    # 32x32: 3 timed over the cap; 64x64, predicted slow from 32x32: stops at its first frame
    assert [p["stats"]["frames"] for p in three["profiles"]] == [MIN_TIMED_FRAMES, 1]
    for profile in three["profiles"]:  # statistics of the frames drawn
        assert profile["frame_ms_median"] > 1e-6 and profile["temporal_change"] > 0
        assert profile["entropy"] > 0
    assert three["profiles"][0]["diversity"] > 0  # 2 time samples, 1 pair
    assert three["profiles"][1]["stats"]["temporal_from"] == [32, 32]
    # by default 64x64, more pixels than 32x32 which was over the cap, is not drawn at all: its
    # profile is 32x32's, a lower bound, and says so
    assert [p["stats"]["frames"] for p in capped["profiles"]] == [MIN_TIMED_FRAMES, 0]
    small, large = capped["profiles"]
    assert large["stats"]["lower_bound_from"] == [32, 32] and (large["width"], large["height"]) == (64, 64)
    assert large["frame_ms_median"] == small["frame_ms_median"] > 1e-6
    assert large["entropy"] == small["entropy"]
    one = validate_one(engine, item, sizes, times, frame_ms_cap=1e-6, slow_size_frames=1)
    assert [p["stats"]["frames"] for p in one["profiles"]] == [MIN_TIMED_FRAMES, 1]
    assert one["profiles"][1]["frame_ms_median"] > 1e-6 and one["profiles"][1]["entropy"] > 0


def test_a_size_stops_once_most_of_its_planned_frames_are_over_the_cap():
    """The median of all planned frames is over the cap as soon as more than half of them are:
    stopping there changes no verdict. A predicted-slow size may stop at one frame over the cap."""
    from render.profiling import _over_cap

    assert not _over_cap([70.0], 60.0, planned=3)
    assert _over_cap([70.0, 80.0], 60.0, planned=3)  # 2 of 3 over: the median of 3 is over
    assert not _over_cap([70.0, 50.0], 60.0, planned=3)
    assert not _over_cap([70.0, 80.0], 60.0, planned=6)
    assert _over_cap([70.0, 80.0, 65.0], 60.0, planned=6)  # 3 timed, median over
    assert not _over_cap([70.0, 50.0, 55.0], 60.0, planned=6)
    assert _over_cap([70.0], 60.0, planned=3, min_timed=1)
    assert not _over_cap([50.0], 60.0, planned=3, min_timed=1)
    assert not _over_cap([70.0, 80.0], None, planned=3)


def test_a_larger_size_is_predicted_slow_from_the_smaller_sizes_frame_time_scaled_by_pixels():
    from render.profiling import _likely_slow

    small = {"width": 64, "height": 64, "frame_ms_median": 4.0}
    assert _likely_slow(small, (256, 256), 60.0)  # 4 ms x 16 = 64 ms
    assert not _likely_slow(small | {"frame_ms_median": 3.5}, (256, 256), 60.0)
    assert not _likely_slow(small, (256, 256), None) and not _likely_slow(None, (256, 256), 60.0)


def test_a_program_slow_at_the_small_size_is_judged_on_all_its_frames_not_its_one_large_frame(engine):
    """Blank at its first time sample, drawn later: one 64x64 frame alone would say blank."""
    from render.profiling import MIN_TIMED_FRAMES, validate_one

    late = "void mainImage(out vec4 c, in vec2 f) { c = vec4(step(1.0, iTime) * f.x / 64.0); }"
    sizes = ((32, 32), (64, 64))
    result = validate_one(engine, shadertoy_item("late", late), sizes, frame_ms_cap=1e-6, slow_size_frames=1)
    assert [p["stats"]["frames"] for p in result["profiles"]] == [MIN_TIMED_FRAMES, 1]
    assert result["status"] == "ok"


def test_validate_caps_frames_at_the_policys_frame_time_bound(tmp_path, monkeypatch, capsys):
    """render validate draws no more frames of a program than its vetting policy needs to reject it."""
    import render.validate
    from render.vetting import Policy
    from tests.render.helpers import run_render

    assert ValidateOptions().frame_ms_cap == Policy().max_frame_ms_median
    assert ValidateOptions().task_params()["frame_ms_cap"] == Policy().max_frame_ms_median
    seen: list[ValidateOptions] = []

    def fake_validate(catalogue, flt=None, options=None, **kwargs):
        seen.append(options)
        return render.validate.ValidateReport(renderer="r")

    monkeypatch.setattr(render.validate, "validate", fake_validate)
    db = str(tmp_path / "c.db")
    open_catalogue(db, create=True).close()
    policy = tmp_path / "p.toml"
    policy.write_text("max_frame_ms_median = 20.0\n")
    assert run_render(["validate", "--db", db], capsys)[0] == 0
    assert run_render(["validate", "--db", db, "--policy", str(policy)], capsys)[0] == 0
    assert [o.frame_ms_cap for o in seen] == [Policy().max_frame_ms_median, 20.0]


def test_validation_workers_jit_without_llvm_optimisation_unless_the_environment_says_otherwise(
    monkeypatch,
):
    """GALLIVM_PERF=nopt halves llvmpipe's first draw, validation's largest cost (issue 11.2); a
    user's own GALLIVM_PERF, even empty (the optimised JIT), wins."""
    from render.sandbox import SandboxPool

    def worker_sees() -> dict:
        options = ValidateOptions(workers=1)
        with SandboxPool(options, "tests.render.helpers:environment_task") as pool:
            [result] = pool.run([{"program": "x"}], {"keys": ["GALLIVM_PERF"]})
        return result["env"]

    monkeypatch.delenv("GALLIVM_PERF", raising=False)
    assert worker_sees() == {"GALLIVM_PERF": "nopt"}
    monkeypatch.setenv("GALLIVM_PERF", "")
    assert worker_sees() == {"GALLIVM_PERF": ""}


def test_a_profile_draws_three_time_samples_twice_at_the_small_size_and_once_at_the_large(engine):
    """Three time samples over the same 0.5-6 s span (four until issue 11.2); the frame 1/30 s
    later only at the smallest size, whose temporal change the larger size reports and names."""
    from render.profiling import validate_one

    result = validate_one(engine, shadertoy_item("good", GOOD), ((32, 32), (64, 64)))
    assert result["status"] == "ok"
    assert [p["stats"]["frames"] for p in result["profiles"]] == [6, 3]
    assert all(p["temporal_change"] > 0 and p["diversity"] > 0 for p in result["profiles"])
    small, large = result["profiles"]
    assert large["temporal_change"] == small["temporal_change"]
    assert large["stats"]["temporal_from"] == [32, 32] and "temporal_from" not in small["stats"]
    both = validate_one(engine, shadertoy_item("good", GOOD), ((32, 32), (64, 64)), paired_sizes=None)
    assert [p["stats"]["frames"] for p in both["profiles"]] == [6, 6]
    assert "temporal_from" not in both["profiles"][1]["stats"]


def test_a_ctrl_c_while_a_worker_starts_is_not_lost_and_the_worker_never_sees_it():
    """Workers start with Ctrl-C kept from them; a Ctrl-C that reaches the command at that moment
    still stops it (it was ignored, and so lost, while a worker was being replaced)."""
    import subprocess
    import sys

    from render.sandbox import _ctrl_c_ignored

    with pytest.raises(KeyboardInterrupt):
        with _ctrl_c_ignored():
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
            os.kill(os.getpid(), signal.SIGINT)  # pressed while the worker starts
            time.sleep(0.2)
    try:
        time.sleep(0.5)  # the child's interpreter is up
        os.kill(child.pid, signal.SIGINT)
        time.sleep(0.5)
        assert child.poll() is None  # Ctrl-C does not reach it
    finally:
        child.kill()
        child.wait()
