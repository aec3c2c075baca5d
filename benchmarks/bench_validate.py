"""Benchmark: programs/s of ``render validate`` on 2 workers, and where the time goes.

Inputs, each imported into its own temporary catalogue and validated end to end with
:func:`render.validate.validate` (the command's library call: worker processes under deadlines,
results written to SQLite as they come):

- the bundled examples (``examples/``: 54 distinct programs, small, written to exercise every
  status, one of them an endless loop that is killed at the compile deadline);
- real public shaders from ``../shared/samples/`` when present (``shadertoy-api/2024-07.jsonl``,
  100 API responses, and ``shadertoys-dataset/20k_2014-02.jsonl``, 11 records; ``--samples-limit``
  takes the first N distinct programs).

Each program is profiled as ``render validate`` does by default: 64² and 256², 3 time samples,
each rendered twice. The worker reports its own time per program (compile, first frame, where
llvmpipe compiles to machine code, rendering, reading pictures back, statistics); time until a
kill is counted for timeouts; the rest of ``wall × workers`` is process overhead (IPC, starting
and replacing workers, the parent's database writes, idle workers at the end of a batch).
``MESA_SHADER_CACHE_DISABLE=true``, so every compile is cold.

Usage: ``python benchmarks/bench_validate.py [--workers 2] [--samples-limit N]``. Prints plain
lines and a final JSON line.

``--dump FILE [--limit N]`` validates the programs of a dump (e.g. a seeded slice of the real
corpus) instead, end to end. ``--dump FILE --compare "before;cap;cap+lp0"`` compares levers on
the same programs instead: each ``;``-separated variant is a ``+``-joined set of the levers in
:data:`LEVERS` (environment for the workers, task parameters, worker count); the programs are
cut into blocks of ``--block`` and every variant validates each block in turn (the order
reversed every other block), so that a machine whose load changes treats every variant alike.
Variants are compared on wall time, the worker's own time per phase, statuses and the default
policy's verdicts (how many differ from the first variant's; a variant named twice, ``before``
and ``before#2``, shows how many differ by noise alone).
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
from corpus.validations import pending_validation, work_items  # noqa: E402
from harvest.importing import import_path  # noqa: E402
from render.validate import ValidateOptions, validate, validation_pool  # noqa: E402
from render.vetting import Policy, judge  # noqa: E402

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


#: The levers --compare combines: (environment of the workers, task parameters, other options).
#: "before" is the profile as it was before issue 11 without its frame-time cap ("before+opt+times4"
#: is all of it: the optimised JIT, 4 time samples).
LEVERS: dict[str, tuple[dict[str, str], dict[str, Any], dict[str, Any]]] = {
    "before": ({}, {"frame_ms_cap": None}, {}),
    "cap": ({}, {"frame_ms_cap": Policy().max_frame_ms_median}, {}),
    "nopt": ({"GALLIVM_PERF": "nopt"}, {}, {}),
    "opt": ({"GALLIVM_PERF": ""}, {}, {}),  # the optimised JIT (workers default to nopt since issue 11)
    "times4": ({}, {"times": (0.5, 1.5, 3.0, 6.0)}, {}),  # the time samples before issue 11
    # a size that a smaller one showed to be over the cap draws 3 frames (as before), not 1
    "slow3": ({}, {"slow_size_frames": None}, {}),
    "lp0": ({"LP_NUM_THREADS": "0"}, {}, {}),
    "lp1": ({"LP_NUM_THREADS": "1"}, {}, {}),
    "lpcores": ({"LP_NUM_THREADS": str(os.cpu_count() or 1)}, {}, {}),  # llvmpipe's own default
    "vec128": ({"LP_NATIVE_VECTOR_WIDTH": "128"}, {}, {}),
    "only256": ({}, {"sizes": ((256, 256),)}, {}),
    "times3": ({}, {"times": (0.5, 2.0, 6.0)}, {}),
    "cache": ({"MESA_SHADER_CACHE_DISABLE": "false"}, {}, {}),
    # every size draws each time sample twice (before issue 11.2's second round: only 64² now)
    "pairsall": ({}, {"paired_sizes": None}, {}),
    # a size larger than one over the cap draws 1 frame (before issue 11.2's second round: none)
    "slow1": ({}, {"slow_size_frames": 1}, {}),
    "w1": ({}, {}, {"workers": 1}),
    "w3": ({}, {}, {"workers": 3}),
}


def _variant(name: str) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
    env: dict[str, str] = {}
    params: dict[str, Any] = {}
    other: dict[str, Any] = {}
    for lever in name.split("#")[0].split("+"):
        if lever not in LEVERS:
            raise SystemExit(f"error: unknown lever {lever!r}; known: {', '.join(LEVERS)}")
        e, p, o = LEVERS[lever]
        env, params, other = env | e, params | p, other | o
    return env, params, other


def _verdict(result: dict[str, Any], policy: Policy) -> bool:
    entry = {
        "program": result["program"],
        "validation": {k: result.get(k) for k in ("status", "first_frame_ms", "standins")},
        "profiles": result.get("profiles") or [],
    }
    return judge(policy, entry).vetted


def compare(
    dump: Path, names: list[str], limit: int | None, block: int, workers: int, save: Path | None = None
) -> dict[str, Any]:
    """Validate the same programs under each variant, interleaved in blocks (see the docstring)."""
    with tempfile.TemporaryDirectory() as tmp:
        catalogue = open_catalogue(str(Path(tmp) / "c.db"), create=True)
        import_path(catalogue, dump)
        pending = pending_validation(catalogue, "none", limit=limit)
        items = list(work_items(catalogue, [program_id for program_id, _ in pending]))
        catalogue.close()
    print(f"{len(items)} programs from {dump}, blocks of {block}, variants {names}", flush=True)
    runs = {name: {"wall": 0.0, "results": {}, "workers_started": 0, "killed": 0} for name in names}
    loads = []
    for number, start in enumerate(range(0, len(items), block)):
        chunk = items[start : start + block]
        for name in names if number % 2 == 0 else names[::-1]:
            env, params, other = _variant(name)
            saved = {key: os.environ.get(key) for key in env}
            os.environ.update(env)
            options = ValidateOptions(workers=other.get("workers", workers))
            try:
                started = time.perf_counter()
                with validation_pool(options) as pool:
                    for result in pool.run(chunk, options.task_params() | params):
                        runs[name]["results"][result["program"]] = result
                    runs[name]["workers_started"] += pool.stats.workers_started
                    runs[name]["killed"] += pool.stats.timeouts_killed
                runs[name]["wall"] += time.perf_counter() - started
            finally:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value
        loads.append(os.getloadavg()[0])
        done = min(start + block, len(items))
        walls = ", ".join(f"{n} {r['wall']:.0f} s" for n, r in runs.items())
        print(f"  {done}/{len(items)} programs (load {loads[-1]:.1f}): {walls}", flush=True)
    policy = Policy()
    first = runs[names[0]]["results"]
    figures: dict[str, Any] = {
        "programs": len(items),
        "block": block,
        "load_1min": [round(x, 1) for x in loads],
    }
    print(f"\nload (1 min) after each block: {figures['load_1min']}")
    header = f"{'variant':<22} {'wall s':>7} {'prog/s':>7} " + " ".join(f"{p[:11]:>11}" for p in PARTS)
    print(header + f" {'vetted':>6} {'differ':>6}  statuses")
    for name, run in runs.items():
        results = run["results"]
        n = len(results)
        means = {p: sum((r.get("cost_ms") or {}).get(p, 0.0) for r in results.values()) / n for p in PARTS}
        vetted = {k: _verdict(r, policy) for k, r in results.items()}
        differ = sorted(k for k in vetted if k in first and vetted[k] != _verdict(first[k], policy))
        statuses = dict(sorted(Counter(r["status"] for r in results.values()).items()))
        status_differ = sum(1 for k, r in results.items() if k in first and r["status"] != first[k]["status"])
        print(
            f"{name:<22} {run['wall']:>7.1f} {n / run['wall']:>7.2f} "
            + " ".join(f"{means[p]:>11.1f}" for p in PARTS)
            + f" {sum(vetted.values()):>6} {len(differ):>6}  {statuses} (status differs: {status_differ})"
        )
        figures[name] = {
            "programs": n,
            "seconds": round(run["wall"], 2),
            "programs_per_second": round(n / run["wall"], 3),
            "mean_ms_per_program": {p: round(v, 1) for p, v in means.items()},
            "statuses": statuses,
            "status_differs_from_first": status_differ,
            "vetted": sum(vetted.values()),
            "verdict_differs_from_first": differ,
            "workers_started": run["workers_started"],
            "timeouts_killed": run["killed"],
        }
    print("(mean ms/program per phase: the worker's own time; wall includes starting the workers)")
    if save is not None:  # every result of every variant, for a closer look
        save.write_text(json.dumps({name: run["results"] for name, run in runs.items()}))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--samples-limit", type=int, default=0, help="first N sample programs; 0 for all")
    parser.add_argument("--deadline", type=float, default=30.0, help="compile + first frame deadline (s)")
    parser.add_argument("--frame-deadline", type=float, default=10.0)
    parser.add_argument("--dump", type=Path, help="validate (or --compare on) the programs of this dump")
    parser.add_argument("--limit", type=int, default=0, help="first N distinct programs of --dump")
    parser.add_argument("--compare", help="variants to compare on --dump, e.g. 'before;cap;cap+lp0'")
    parser.add_argument("--block", type=int, default=25, help="programs a variant validates in turn")
    parser.add_argument("--save", type=Path, help="with --compare: write every result to this JSON file")
    args = parser.parse_args()
    if args.compare:
        if args.dump is None:
            parser.error("--compare needs --dump")
        names = [n.strip() for n in args.compare.split(";") if n.strip()]
        figures = compare(args.dump, names, args.limit or None, args.block, args.workers, args.save)
        print(json.dumps(figures | {"cpus": os.cpu_count()}))
        return

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
    if args.dump is not None:
        figures["dump"] = run(str(args.dump), [args.dump], options(), args.limit or None)
        figures["load_1min_after"] = round(os.getloadavg()[0], 2)
        print(json.dumps(figures))
        return
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
