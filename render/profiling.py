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
#: How many of the smallest sizes draw every time sample twice, 1/30 s apart (temporal change);
#: larger sizes draw each sample once and take their temporal change from the largest paired size.
#: One since issue 11.2: whether a program moves shows at 64² as well as at 256², and the 256²
#: partner frames cost 7 % of validation's time on a random 400 real programs (benchmarks/RESULTS.md).
PAIRED_SIZES = 1
#: Frames drawn at a size at least as large as one whose median frame was over the cap: none
#: since issue 11.2 (the profile is the smaller size's, a lower bound; such programs were half
#: of validation's drawing time, each 256² frame of them ~1 s on llvmpipe); 1 until then.
SLOW_SIZE_FRAMES = 0
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
    slow_size_frames: int | None = SLOW_SIZE_FRAMES,
    paired_sizes: int | None = PAIRED_SIZES,
) -> dict[str, Any]:
    """Compile, render and profile one program; the result :func:`corpus.validations.record_validations`
    stores. ``phase(name)`` is called before the compile and before every frame.

    At each size the program is drawn at every time in ``times`` and 1/30 s later. With
    ``frame_ms_cap``, a size's frames stop once :data:`MIN_TIMED_FRAMES` are timed and their median
    is above the cap: a vetting policy whose frame-time bound is at most the cap rejects such a
    program whatever the other frames show, and such programs are where validation's time went.
    A size at least as large as one whose median was over the cap (more pixels never draw faster)
    draws ``slow_size_frames`` only (None: as many as any other size; 0, the default: none, its
    profile is the smaller size's, a lower bound); the status is then judged on the frames drawn
    there with the smaller size's. A size that the smaller one's frame time, scaled by pixels,
    predicts to be over the cap stops after its first frame over it.
    The statistics then cover the frames drawn; each profile says how many (``stats.frames``).

    Only the first ``paired_sizes`` sizes (None: all) draw the frame 1/30 s later; a size without
    a pair of its own (or cut to one frame by the cap) takes its ``temporal_change`` from the
    largest size that had one, and says so in ``stats.temporal_from`` ([w, h])."""
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
        moving: tuple[float, list[int]] | None = None  # temporal change of the largest paired size
        previous: dict[str, Any] | None = None
        for index, size in enumerate(sizes):
            # more pixels never draw faster: over the cap at a smaller size, over it here too
            known_slow = slow_at is not None and size[0] * size[1] >= slow_at[0] * slow_at[1]
            if known_slow and slow_size_frames == 0 and previous is not None:
                result["profiles"].append(_lower_bound(previous, size))
                continue
            paired = paired_sizes is None or index < paired_sizes
            profile, drawn, has_pair = _profile_at(
                compiled,
                size,
                times,
                phase,
                frame_ms_cap,
                cost,
                slow_size_frames if known_slow else None,
                paired,
                likely_slow=_likely_slow(previous, size, frame_ms_cap),
            )
            if has_pair:
                moving = (profile["temporal_change"], [size[0], size[1]])
            elif moving is not None:  # no pair here: whether the program moves was seen at a smaller size
                profile["temporal_change"] = moving[0]
                profile["stats"]["temporal_from"] = moving[1]
            result["profiles"].append(profile)
            over = frame_ms_cap is not None and profile["frame_ms_median"] > frame_ms_cap
            if over and profile["stats"]["frames"] >= MIN_TIMED_FRAMES and slow_size_frames is not None:
                slow_at = slow_at or size
            # one frame judges no status alone: the smaller size's frames join it
            largest = _joined(largest, drawn) if known_slow else drawn
            previous = profile
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


def _over_cap(
    timings: list[float], cap: float | None, planned: int, min_timed: int = MIN_TIMED_FRAMES
) -> bool:
    """Whether a size's frames may stop because the policy rejects them whatever comes next: once
    ``min_timed`` are timed and their median is over ``cap``, or once more than half of the
    ``planned`` frames are over it (the median of them all is then over it, exactly)."""
    if cap is None or not timings:
        return False
    if sum(t > cap for t in timings) * 2 > planned:
        return True
    return len(timings) >= min_timed and statistics.median(timings) > cap


def _likely_slow(previous: dict[str, Any] | None, size: tuple[int, int], cap: float | None) -> bool:
    """Whether a smaller size's median frame, scaled by pixels, says this size is over ``cap``.
    Only a hint: such a size may stop after one frame over the cap instead of three, and one frame
    under it draws on as any other size (of 13,554 real programs' profiles, 4,505 were so
    predicted from 64², and 248 of them, 5.5 %, were under the cap at 256²)."""
    if previous is None or cap is None:
        return False
    scale = (size[0] * size[1]) / float(previous["width"] * previous["height"])
    return previous["frame_ms_median"] * scale > cap


def _lower_bound(previous: dict[str, Any], size: tuple[int, int]) -> dict[str, Any]:
    """The profile of a size that is not drawn because a smaller one was already over the frame-time
    cap (more pixels never draw faster): the smaller size's profile, whose frame times are a lower
    bound here, and says so (``stats.lower_bound_from``: [w, h]; ``stats.frames``: 0)."""
    stats = {"frames": 0, "lower_bound_from": [previous["width"], previous["height"]]}
    return previous | {"width": size[0], "height": size[1], "stats": stats}


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
    paired: bool = True,
    *,
    likely_slow: bool = False,
) -> tuple[dict[str, Any], tuple[list[np.ndarray], list[np.ndarray], float], bool]:
    """One size's profile (see :func:`validate_one`), the frames, float pictures and non-finite
    share that :func:`render.stats.classify` judges, and whether a pair of frames 1/30 s apart was
    drawn (its temporal change is measured); adds its time to ``cost``. ``max_frames``: stop after
    that many frames (a size a smaller one showed to be over the cap); ``paired``: draw each time
    sample twice; ``likely_slow``: a smaller size suggests this one is over the cap, so one frame
    over it is enough to stop (see :func:`_over_cap`)."""
    compiled.reset()
    timings: list[float] = []
    pairs: list[tuple[np.ndarray, np.ndarray | None]] = []
    floats: list[np.ndarray] = []

    planned = len(times) * (2 if paired else 1)
    if max_frames is not None:
        planned = min(planned, max_frames)
    min_timed = 1 if likely_slow else MIN_TIMED_FRAMES

    def enough() -> bool:
        return len(timings) >= planned or _over_cap(timings, frame_ms_cap, planned, min_timed)

    for t in times:
        if enough():
            break
        pair: list[np.ndarray] = []
        for dt in (0.0, NEXT_FRAME) if paired else (0.0,):
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
    has_pair = any(p[1] is not None for p in pairs)
    return profile, ([p[0] for p in pairs], floats, stats.nonfinite_share), has_pair


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
        slow_size_frames=params.get("slow_size_frames", SLOW_SIZE_FRAMES),
        paired_sizes=params.get("paired_sizes", PAIRED_SIZES),
    )
