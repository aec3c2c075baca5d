"""The profile of one program: compile it, render it at a few sizes and times, measure it.

:func:`validate_one` is what ``render validate`` runs on each program, in a sandboxed worker
(:mod:`render.sandbox`, task :data:`PROFILE_TASK`): its result is the status, the driver's log,
timings and image statistics that :func:`corpus.validations.record_validations` stores.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from render.dialects import Plan, build_plan
from render.dialects.loopguard import TRIPPED_LOG
from render.engine import CompiledProgram, Engine, ShaderError
from render.program import RenderProgram
from render.stats import classify, frame_stats

#: Time samples (seconds) a program is profiled at; each is rendered again 1/30 s later.
SAMPLE_TIMES = (0.5, 1.5, 3.0, 6.0)
NEXT_FRAME = 1.0 / 30.0
#: The sandbox task that profiles a program (params: ``sizes``, ``times``).
PROFILE_TASK = "render.profiling:profile_task"


def _timed_frame(compiled: CompiledProgram, t: float, size: tuple[int, int]) -> float:
    started = time.perf_counter()
    compiled.render(t, size)
    compiled.ctx.finish()
    return (time.perf_counter() - started) * 1000.0


def compile_or_status(
    engine: Engine, plan: Plan, phase=lambda name: None, *, float_picture: bool = True
) -> CompiledProgram | dict[str, str]:
    """``plan`` compiled, or the ``{status, log}`` saying why it cannot be (``unsupported``, or the
    driver's ``compile_error``/``link_error``). ``phase("compile")`` is called before compiling."""
    if plan.unsupported:
        return {"status": "unsupported", "log": plan.unsupported}
    phase("compile")
    try:
        return engine.compile(plan, float_picture=float_picture)
    except ShaderError as exc:
        return {"status": exc.status, "log": exc.log}


def validate_one(
    engine: Engine,
    item: dict[str, Any],
    sizes: tuple[tuple[int, int], ...] = ((64, 64), (256, 256)),
    times: tuple[float, ...] = SAMPLE_TIMES,
    phase=lambda name: None,
) -> dict[str, Any]:
    """Compile, render and profile one program; the result :func:`corpus.validations.record_validations`
    stores. ``phase(name)`` is called before the compile and before every frame."""
    program = RenderProgram.from_item(item)
    result: dict[str, Any] = {
        "program": item["program"],
        "code_sha256": item["code_sha256"],
        "dialect": item["dialect"],
        "renderer": engine.renderer_string,
        "log": None,
        "compile_ms": None,
        "first_frame_ms": None,
        "standins": [],
        "profiles": [],
    }
    plan = build_plan(program)
    result["standins"] = plan.standins
    compiled = compile_or_status(engine, plan, phase)
    if isinstance(compiled, dict):
        return result | compiled
    try:
        result["compile_ms"] = round(compiled.compile_ms, 3)
        phase("first-frame")  # llvmpipe compiles to machine code at the first draw
        result["first_frame_ms"] = round(_timed_frame(compiled, times[0], sizes[0]), 3)
        if compiled.loop_guard_tripped():  # bounded, but cut short: as if the deadline had passed
            return result | {"status": "timeout", "log": TRIPPED_LOG}
        # where the worker's time goes (benchmarks/bench_validate.py); not stored
        cost = {"compile": result["compile_ms"], "first_frame": result["first_frame_ms"]}
        cost |= {"render": 0.0, "read": 0.0, "statistics": 0.0}
        largest: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
        for size in sizes:
            compiled.reset()
            timings, pairs, floats = [], [], []
            for t in times:
                pair = []
                for dt in (0.0, NEXT_FRAME):
                    phase("frame")
                    timings.append(_timed_frame(compiled, t + dt, size))
                    started = time.perf_counter()
                    frame = np.empty((size[1], size[0], 4), np.uint8)
                    pair.append(compiled.read_into(frame))
                    if dt == 0.0:
                        floats.append(compiled.read_float(size))
                    cost["read"] += (time.perf_counter() - started) * 1000.0
                pairs.append((pair[0], pair[1]))
            cost["render"] += sum(timings)
            started = time.perf_counter()
            stats = frame_stats(pairs, floats)
            cost["statistics"] += (time.perf_counter() - started) * 1000.0
            result["profiles"].append(
                {
                    "width": size[0],
                    "height": size[1],
                    "frame_ms_median": round(statistics.median(timings), 3),
                    "frame_ms_p90": round(float(np.percentile(timings, 90)), 3),
                    **stats.to_json(),
                }
            )
            largest = ([p[0] for p in pairs], floats)
        started = time.perf_counter()
        status = classify(*largest)
        cost["statistics"] += (time.perf_counter() - started) * 1000.0
        if compiled.loop_guard_tripped():
            status, result["log"] = "timeout", TRIPPED_LOG
        if status != "ok":
            result["profiles"] = []  # profiles describe usable programs only
        return result | {"status": status, "cost_ms": {k: round(v, 3) for k, v in cost.items()}}
    finally:
        compiled.release()


def profile_task(engine: Engine, item: dict[str, Any], params: dict[str, Any], phase) -> dict[str, Any]:
    """:func:`validate_one` as a sandbox task."""
    sizes = tuple((int(w), int(h)) for w, h in params["sizes"])
    return validate_one(engine, item, sizes, tuple(params["times"]), phase=phase)
