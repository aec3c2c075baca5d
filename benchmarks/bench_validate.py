"""Benchmark: programs/s of ``render validate`` on 2 workers, and where the time goes.

Inputs, each imported into its own temporary catalogue and validated end to end with
:func:`render.validate.validate` (the command's library call: worker processes under deadlines,
results written to SQLite as they come):

- the bundled examples (``examples/``: 54 distinct programs, small, written to exercise every
  status, one of them an endless loop that is killed at the compile deadline);
- real public shaders from ``../shared/samples/`` when present (``shadertoy-api/2024-07.jsonl``,
  100 API responses, and ``shadertoys-dataset/20k_2014-02.jsonl``, 11 records; ``--samples-limit``
  takes the first N distinct programs).

Each program is profiled as ``render validate`` does by default: 64² and 256², 4 time samples,
each rendered twice. The worker reports its own time per program (compile, first frame, where
llvmpipe compiles to machine code, rendering, reading pictures back, statistics); time until a
kill is counted for timeouts; the rest of ``wall × workers`` is process overhead (IPC, starting
and replacing workers, the parent's database writes, idle workers at the end of a batch).
``MESA_SHADER_CACHE_DISABLE=true``, so every compile is cold.

Usage: ``python benchmarks/bench_validate.py [--workers 2] [--samples-limit N]``. Prints plain
lines and a final JSON line.
"""

from __future__ import annotations

import os

os.environ.setdefault("MESA_SHADER_CACHE_DISABLE", "true")  # workers inherit it

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from corpus.db import open_catalogue  # noqa: E402
from harvest.importing import import_path  # noqa: E402
from render.validate import ValidateOptions, validate  # noqa: E402

EXAMPLES = ROOT / "examples"
EXAMPLE_PATHS = ("shaders21k", "shadertoys.jsonl", "glslsandbox.jsonl", "gl-transitions.json", "repo")
SAMPLES = ROOT.parent / "shared" / "samples"
SAMPLE_PATHS = ("shadertoy-api/2024-07.jsonl", "shadertoys-dataset/20k_2014-02.jsonl")
PARTS = ("compile", "first_frame", "render", "read", "statistics")


def run(name: str, paths: list[Path], options: ValidateOptions, limit: int | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        catalogue = open_catalogue(str(Path(tmp) / "c.db"), create=True)
        for path in paths:
            import_path(catalogue, path)
        options.limit = limit
        results: list[dict[str, Any]] = []
        started = time.perf_counter()
        report = validate(catalogue, options=options, progress=results.append)
        wall = time.perf_counter() - started
        catalogue.close()
    costs = {part: 0.0 for part in PARTS}
    killed = 0.0
    for r in results:
        for part, ms in (r.get("cost_ms") or {}).items():
            costs[part] += ms / 1000.0
        found = re.search(r"killed after ([\d.]+) s", r.get("log") or "")
        if r["status"] == "timeout" and found:
            killed += float(found.group(1))
    capacity = wall * options.worker_count()
    accounted = sum(costs.values()) + killed
    split = {part: seconds / capacity for part, seconds in costs.items()}
    split["timeouts (until killed)"] = killed / capacity
    split["process overhead and idle"] = max(0.0, 1.0 - accounted / capacity)
    n = len(results)
    per_program_ms = {part: round(seconds / n * 1000.0, 1) for part, seconds in costs.items()}
    print(
        f"\n{name}: {n} programs in {wall:.1f} s on {options.worker_count()} workers"
        f" = {n / wall:.2f} programs/s"
    )
    print(f"  statuses: {dict(Counter(r['status'] for r in results))}")
    print(f"  workers started: {report.workers_started}, killed on deadline: {report.timeouts_killed}")
    print("  share of worker time (wall x workers):")
    for part, share in split.items():
        mean = f"   mean {per_program_ms[part]:.1f} ms/program" if part in per_program_ms else ""
        print(f"    {part:<28} {share:6.1%}{mean}")
    return {
        "programs": n,
        "seconds": round(wall, 2),
        "programs_per_second": round(n / wall, 3),
        "statuses": dict(Counter(r["status"] for r in results)),
        "workers_started": report.workers_started,
        "timeouts_killed": report.timeouts_killed,
        "share_of_worker_time": {k: round(v, 4) for k, v in split.items()},
        "mean_ms_per_program": per_program_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--samples-limit", type=int, default=0, help="first N sample programs; 0 for all")
    parser.add_argument("--deadline", type=float, default=30.0, help="compile + first frame deadline (s)")
    parser.add_argument("--frame-deadline", type=float, default=10.0)
    args = parser.parse_args()

    def options() -> ValidateOptions:
        return ValidateOptions(
            workers=args.workers, compile_deadline=args.deadline, frame_deadline=args.frame_deadline
        )

    figures: dict[str, Any] = {
        "workers": args.workers,
        "deadlines_s": [args.deadline, args.frame_deadline],
        "sizes": [list(s) for s in ValidateOptions().sizes],
        "times": list(ValidateOptions().times),
        "cpus": os.cpu_count(),
        "load_1min_before": round(os.getloadavg()[0], 2),
    }
    figures["examples"] = run("bundled examples", [EXAMPLES / p for p in EXAMPLE_PATHS], options(), None)
    if SAMPLES.is_dir():
        paths = [SAMPLES / p for p in SAMPLE_PATHS if (SAMPLES / p).exists()]
        figures["samples"] = run("shared samples", paths, options(), args.samples_limit or None)
    else:
        print("\n../shared/samples is absent: real shaders not measured")
    figures["load_1min_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
