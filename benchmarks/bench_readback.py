"""Benchmark: what reading an 8-bit picture costs, drawn upside down (rows read in order) or
drawn upright (rows read bottom-up and flipped on the CPU, as before).

Input: the bundled examples that plan to one pass without feedback and that
:mod:`render.dialects.flip` draws upside down (the 8-bit fast path's programs). Per program and
size, each way is compiled (``engine.compile(program, float_picture=False)``; "upright" with the
flip turned off), draws one frame, then ``read_into`` a preallocated (h, w, 4) uint8 array is timed
``--reads`` times in a row, in alternating blocks of the two ways, ``--repeats`` blocks each; the
best block counts. Also timed the same way: ``render`` + ``read_into`` (a whole frame), to show the
read's share. ``MESA_SHADER_CACHE_DISABLE=true``.

Usage: ``python benchmarks/bench_readback.py [--sizes 64,128,256] [--reads 200] [--repeats 5]``.
Prints plain lines and a final JSON line.
"""

from __future__ import annotations

import os

os.environ.setdefault("MESA_SHADER_CACHE_DISABLE", "true")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import render.engine  # noqa: E402
from benchmarks.bench_render import example_programs  # noqa: E402
from render.engine import Engine  # noqa: E402

WAYS = ("upside down", "upright + CPU flip")


def _compile(engine: Engine, program, way: str):
    real = render.engine.upside_down
    if way != WAYS[0]:
        render.engine.upside_down = lambda p: None
    try:
        return engine.compile(program, float_picture=False)
    finally:
        render.engine.upside_down = real


def _block(compiled, out: np.ndarray, size: tuple[int, int], n: int, frame: bool) -> float:
    """Microseconds per read (or per frame + read) over ``n`` in a row."""
    compiled.ctx.finish()
    started = time.perf_counter()
    for i in range(n):
        if frame:
            compiled.render(0.5 + i / 60, size)
        compiled.read_into(out)
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="64,128,256")
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    engine = Engine()
    print(f"renderer: {engine.renderer_string}")
    programs = example_programs()
    figures: dict[str, Any] = {"renderer": engine.renderer_string, "load_1min_before": os.getloadavg()[0]}
    rows = []
    for size in [(int(s), int(s)) for s in args.sizes.split(",")]:
        out = np.empty((size[1], size[0], 4), np.uint8)
        read = {w: [] for w in WAYS}
        whole = {w: [] for w in WAYS}
        counted = 0
        for program in programs:
            compiled = {w: _compile(engine, program, w) for w in WAYS}
            if not compiled[WAYS[0]].upside_down:  # feedback or not flippable: nothing to compare
                for c in compiled.values():
                    c.release()
                continue
            counted += 1
            best_read = {w: float("inf") for w in WAYS}
            best_whole = {w: float("inf") for w in WAYS}
            for c in compiled.values():
                c.render(0.5, size)  # llvmpipe's JIT, untimed
                c.read_into(out)
            for _ in range(args.repeats):
                for w in WAYS:
                    best_read[w] = min(best_read[w], _block(compiled[w], out, size, args.reads, False))
                    best_whole[w] = min(best_whole[w], _block(compiled[w], out, size, args.frames, True))
            for w in WAYS:
                read[w].append(best_read[w])
                whole[w].append(best_whole[w])
                compiled[w].release()
        row = {"size": size[0], "programs": counted}
        for w in WAYS:
            row[f"read_us_median {w}"] = round(statistics.median(read[w]), 2)
            row[f"frame_and_read_us_sum {w}"] = round(sum(whole[w]), 1)
        row["images_per_s_ratio"] = round(sum(whole[WAYS[1]]) / sum(whole[WAYS[0]]), 3)
        rows.append(row)
        print(
            f"{size[0]}²: {counted} programs; read_into median {row[f'read_us_median {WAYS[0]}']:.1f} µs "
            f"upside down vs {row[f'read_us_median {WAYS[1]}']:.1f} µs upright + CPU flip; "
            f"images/s upside down / upright = {row['images_per_s_ratio']:.3f}"
        )
    figures["rows"] = rows
    figures["load_1min_after"] = os.getloadavg()[0]
    engine.release()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
