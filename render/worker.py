"""The validation worker: one process, one OpenGL context, many programs, killed if it hangs.

The parent (:mod:`render.validate`) sends work items over a pipe; before each phase (compile,
each frame) the worker says so, and the parent kills it if the phase outlives its deadline. A
worker never decides about deadlines itself: a shader stuck inside the driver cannot be
interrupted from the inside.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

import numpy as np

from render.dialects import Plan, build_plan
from render.engine import CompiledProgram, Engine, ShaderError
from render.program import RenderPassSource, RenderProgram
from render.stats import classify, frame_stats

#: Time samples (seconds) a program is profiled at; each is rendered again 1/30 s later.
SAMPLE_TIMES = (0.5, 1.5, 3.0, 6.0)
NEXT_FRAME = 1.0 / 30.0


def program_from_item(item: dict[str, Any]) -> RenderProgram:
    """A :class:`RenderProgram` from corpus's work item (or a snapshot manifest line with code)."""
    passes = tuple(
        RenderPassSource(p["name"], p["type"], p.get("code") or "", tuple(p.get("inputs") or ()))
        for p in item["passes"]
    )
    return RenderProgram(item["program"], item["dialect"], passes, item.get("code_sha256", ""))


def rss_bytes() -> int:
    """This process's resident memory now (not its peak)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: the peak is the best we have
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


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
    program = program_from_item(item)
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
        if status != "ok":
            result["profiles"] = []  # profiles describe usable programs only
        return result | {"status": status, "cost_ms": {k: round(v, 3) for k, v in cost.items()}}
    finally:
        compiled.release()


def main(conn, device: str | None = None) -> None:
    """Worker process entry point: say hello with the renderer string, then serve items."""
    try:
        engine = Engine(device=device)
    except Exception as exc:  # noqa: BLE001 - report why, then exit
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("hello", engine.renderer_string, os.getpid()))

    def phase(name: str) -> None:
        conn.send(("phase", name))

    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message[0] == "stop":
            return
        task, item, sizes, times = message
        try:
            if task == "frames":  # a contact-sheet tile: pictures, no statistics
                from render.pictures import render_item

                result = render_item(engine, item, sizes, times, phase=phase)
            else:
                result = validate_one(engine, item, sizes, times, phase=phase)
        except Exception as exc:  # noqa: BLE001 - a driver error on one program is that program's crash
            result = {
                "program": item["program"],
                "code_sha256": item["code_sha256"],
                "dialect": item["dialect"],
                "renderer": engine.renderer_string,
                "status": "crash",
                "log": f"{type(exc).__name__}: {exc}"[:4000],
            }
        conn.send(("result", result, rss_bytes()))


if __name__ == "__main__":  # started by render.validate with the fd of its end of a socket pair
    import sys
    from multiprocessing.connection import Connection

    main(Connection(int(sys.argv[1])), sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else None)
