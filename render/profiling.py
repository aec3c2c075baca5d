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

#: Time samples (seconds) a program is profiled at; each is rendered again 1/30 s later. Three
#: (four until issue 11: 0.5, 1.5, 3.0, 6.0): a quarter fewer frames, the same span of time, and
#: on a random 300 of the real corpus as many programs vetted (benchmarks/RESULTS.md, issue 11).
SAMPLE_TIMES = (0.5, 2.0, 6.0)
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


#: Frames a profile times at least before a frame-time cap may end it (a median of 3 ignores one
#: slow frame, e.g. the first one at a new size).
MIN_TIMED_FRAMES = 3


def validate_one(
    engine: Engine,
    item: dict[str, Any],
    sizes: tuple[tuple[int, int], ...] = ((64, 64), (256, 256)),
    times: tuple[float, ...] = SAMPLE_TIMES,
    phase=lambda name: None,
    *,
    frame_ms_cap: float | None = None,
    slow_size_frames: int | None = 1,
) -> dict[str, Any]:
    """Compile, render and profile one program; the result :func:`corpus.validations.record_validations`
    stores. ``phase(name)`` is called before the compile and before every frame.

    At each size the program is drawn at every time in ``times`` and 1/30 s later. With
    ``frame_ms_cap``, a size's frames stop once :data:`MIN_TIMED_FRAMES` are timed and their median
    is above the cap: a vetting policy whose frame-time bound is at most the cap rejects such a
    program whatever the other frames show, and such programs are where validation's time went.
    A size at least as large as one whose median was over the cap (more pixels never draw faster)
    draws ``slow_size_frames`` only (None: as any other size), for the profile's timing and
    picture; the status is then judged on them with the smaller size's frames.
    The statistics then cover the frames drawn; each profile says how many (``stats.frames``)."""
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
        largest: tuple[list[np.ndarray], list[np.ndarray], float] = ([], [], 0.0)
        slow_at: tuple[int, int] | None = None  # a size whose median frame is over the cap
        for size in sizes:
            # more pixels never draw faster: over the cap at a smaller size, over it here too
            known_slow = slow_at is not None and size[0] * size[1] >= slow_at[0] * slow_at[1]
            profile, drawn = _profile_at(
                compiled, size, times, phase, frame_ms_cap, cost, slow_size_frames if known_slow else None
            )
            result["profiles"].append(profile)
            over = frame_ms_cap is not None and profile["frame_ms_median"] > frame_ms_cap
            if over and profile["stats"]["frames"] >= MIN_TIMED_FRAMES and slow_size_frames:
                slow_at = slow_at or size
            # one frame judges no status alone: the smaller size's frames join it
            largest = _joined(largest, drawn) if known_slow else drawn
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


def _over_cap(timings: list[float], cap: float | None) -> bool:
    return cap is not None and len(timings) >= MIN_TIMED_FRAMES and statistics.median(timings) > cap


def _joined(
    a: tuple[list[np.ndarray], list[np.ndarray], float], b: tuple[list[np.ndarray], list[np.ndarray], float]
) -> tuple[list[np.ndarray], list[np.ndarray], float]:
    """Two sizes' frames, float pictures and mean non-finite share, as one set."""
    n_a, n_b = len(a[1]), len(b[1])
    share = (a[2] * n_a + b[2] * n_b) / max(1, n_a + n_b)
    return a[0] + b[0], a[1] + b[1], share


def _profile_at(
    compiled: CompiledProgram,
    size: tuple[int, int],
    times: tuple[float, ...],
    phase,
    frame_ms_cap: float | None,
    cost: dict[str, float],
    max_frames: int | None = None,
) -> tuple[dict[str, Any], tuple[list[np.ndarray], list[np.ndarray], float]]:
    """One size's profile (see :func:`validate_one`), and the frames, float pictures and
    non-finite share that :func:`render.stats.classify` judges; adds its time to ``cost``.
    ``max_frames``: stop after that many frames (a size a smaller one showed to be over the cap)."""
    compiled.reset()
    timings: list[float] = []
    pairs: list[tuple[np.ndarray, np.ndarray | None]] = []
    floats: list[np.ndarray] = []

    def enough() -> bool:
        return _over_cap(timings, frame_ms_cap) or (max_frames is not None and len(timings) >= max_frames)

    for t in times:
        if enough():
            break
        pair: list[np.ndarray] = []
        for dt in (0.0, NEXT_FRAME):
            if pair and enough():
                break
            phase("frame")
            timings.append(_timed_frame(compiled, t + dt, size))
            started = time.perf_counter()
            frame = np.empty((size[1], size[0], 4), np.uint8)
            pair.append(compiled.read_into(frame))
            if dt == 0.0:
                floats.append(compiled.read_float(size))
            cost["read"] += (time.perf_counter() - started) * 1000.0
        pairs.append((pair[0], pair[1] if len(pair) > 1 else None))
    cost["render"] += sum(timings)
    started = time.perf_counter()
    stats = frame_stats(pairs, floats)
    cost["statistics"] += (time.perf_counter() - started) * 1000.0
    profile = {
        "width": size[0],
        "height": size[1],
        "frame_ms_median": round(statistics.median(timings), 3),
        "frame_ms_p90": round(float(np.percentile(timings, 90)), 3),
        **stats.to_json(),
        "stats": {"frames": len(timings)},
    }
    return profile, ([p[0] for p in pairs], floats, stats.nonfinite_share)


def profile_task(engine: Engine, item: dict[str, Any], params: dict[str, Any], phase) -> dict[str, Any]:
    """:func:`validate_one` as a sandbox task."""
    sizes = tuple((int(w), int(h)) for w, h in params["sizes"])
    cap = params.get("frame_ms_cap")
    return validate_one(
        engine,
        item,
        sizes,
        tuple(params["times"]),
        phase=phase,
        frame_ms_cap=None if cap is None else float(cap),
        slow_size_frames=params.get("slow_size_frames", 1),
    )
