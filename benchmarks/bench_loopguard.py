"""Benchmark: the loop guard changes no picture of a real ``ok`` program, and what it costs.

Input: a random slice (``--programs N``, ``--seed``) of ``../shared/corpus/shadertoys-public.jsonl.gz``,
drawn among the single-pass records whose ``test`` field (the dataset's own render) says ok
(``--any-record``: among all), written to a temporary JSON-lines file and imported into a
temporary catalogue (or, with ``--examples``, the bundled examples). It is validated as
``render validate`` does by default (2 workers, 64² and 256², the guard as the device wants it:
off on llvmpipe; on a GPU on, so that the unguarded side below only ever draws programs whose
loops ended), then each ``ok`` program is rendered in a sandboxed worker (task
:func:`compare_task`) twice on one context: unguarded and guarded, the same frames in the same
order (``--size``, each of ``--times`` rendered ``--repeats`` times in a row, so buffers and
backbuffers feed back alike), the guarded and the unguarded frame of each step drawn one after
the other, in alternating order (and the two compiled in an order that alternates between
programs), each timed up to ``glFinish``. Pictures are compared as the 8-bit pictures a browser
shows (the float path).

Reported: compile failures the guard introduces, programs it refuses (a loop it cannot read),
programs where it tripped, how many are identical and which differ (share of pixels, largest
difference), and its cost: the guarded / unguarded ratio of compile time, of the first frame
(llvmpipe's JIT) and of the frame time (per program the sum over its frames; the median, p90 and
the ratio of the sums over programs), and the programs it slows most.
``MESA_SHADER_CACHE_DISABLE=true``.

Usage: ``python benchmarks/bench_loopguard.py [--programs 250] [--seed 11] [--examples]``. Prints
plain lines and a final JSON line.
"""

from __future__ import annotations

import os

os.environ.setdefault("MESA_SHADER_CACHE_DISABLE", "true")  # workers inherit it

import argparse  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from corpus.db import open_catalogue  # noqa: E402
from corpus.validations import load_program  # noqa: E402
from harvest.importing import import_path  # noqa: E402
from render.dialects import build_plan  # noqa: E402
from render.engine import Engine, ShaderError  # noqa: E402
from render.program import RenderProgram  # noqa: E402
from render.sandbox import SandboxPool  # noqa: E402
from render.validate import ValidateOptions, validate  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus" / "shadertoys-public.jsonl.gz"
EXAMPLES = ROOT / "examples"
EXAMPLE_PATHS = ("shaders21k", "shadertoys.jsonl", "glslsandbox.jsonl", "gl-transitions.json", "repo")
TASK = "benchmarks.bench_loopguard:compare_task"

_ENGINES: dict[str, Engine] = {}


def _engines(engine: Engine) -> tuple[Engine, Engine]:
    """An unguarded and a guarded engine on the worker's context, whatever its own setting."""
    if not _ENGINES:
        _ENGINES["plain"] = Engine(engine.ctx, loop_guard="off")
        _ENGINES["guarded"] = Engine(engine.ctx, loop_guard="on")
    return _ENGINES["plain"], _ENGINES["guarded"]


def _timed(compiled, t: float, size: tuple[int, int]) -> float:
    started = time.perf_counter()
    compiled.render(t, size)
    compiled.ctx.finish()
    return (time.perf_counter() - started) * 1000.0


def compare_task(engine: Engine, item: dict[str, Any], params: dict[str, Any], phase) -> dict[str, Any]:
    """One program unguarded and guarded: compile errors, trips, pictures and times of each."""
    size = tuple(params["size"])
    result: dict[str, Any] = {"program": item["program"], "status": "ok"}
    plan = build_plan(RenderProgram.from_item(item))
    compiled = {}
    engines = dict(zip(("plain", "guarded"), _engines(engine), strict=True))
    first = sorted(engines, reverse=sum(item["code_sha256"].encode()) % 2 == 1)  # alternate who goes first
    for name, eng in ((n, engines[n]) for n in first):
        phase("compile")
        try:
            c = compiled[name] = eng.compile(plan)
        except ShaderError as exc:
            result[f"{name}_error"] = f"{exc.status}: {exc.log[:300]}"
            continue
        result[f"{name}_compile_ms"] = c.compile_ms
        phase("first-frame")
        result[f"{name}_first_frame_ms"] = _timed(c, params["times"][0], size)
        c.reset()
    try:
        if len(compiled) < 2:
            return result
        times = {"plain": [], "guarded": []}
        differing, largest, steps = 0, 0, 0
        order = list(first)
        for t in params["times"]:
            for _ in range(params["repeats"]):
                pictures = {}
                for name in order:
                    phase("frame")
                    times[name].append(_timed(compiled[name], t, size))
                    pictures[name] = compiled[name].read_into(np.empty((size[1], size[0], 4), np.uint8))
                order.reverse()
                diff = np.abs(pictures["plain"].astype(np.int16) - pictures["guarded"]).max(axis=2)
                differing += int((diff > 0).sum())
                largest = max(largest, int(diff.max()))
                steps += 1
        result["tripped"] = compiled["guarded"].loop_guard_tripped()
        result["differing_share"] = differing / (steps * size[0] * size[1])
        result["largest_difference"] = largest
        result["plain_frame_ms"] = sum(times["plain"])
        result["guarded_frame_ms"] = sum(times["guarded"])
        return result
    finally:
        for c in compiled.values():
            c.release()


PASS_FIELDS = (
    "common_code",
    "sound_code",
    "buffer_a_code",
    "buffer_b_code",
    "buffer_c_code",
    "buffer_d_code",
    "cube_a_code",
)


def tested_ok_single_pass(line: str) -> bool:
    """Whether a dump record is one the dataset's own renderer drew (``test`` ok) in one pass."""
    record = json.loads(line)
    return record.get("test") == "ok" and not any((record.get(f) or "").strip() for f in PASS_FIELDS)


def corpus_slice(path: Path, count: int, seed: int, out: Path, *, any_record: bool = False) -> int:
    """Write ``count`` random lines of the corpus (chosen by ``seed``) to ``out``, among the
    records :func:`tested_ok_single_pass` accepts unless ``any_record``; returns how many."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        eligible = [n for n, line in enumerate(f) if any_record or tested_ok_single_pass(line)]
    chosen = set(random.Random(seed).sample(eligible, min(count, len(eligible))))
    with gzip.open(path, "rt", encoding="utf-8") as f, out.open("w", encoding="utf-8") as w:
        for n, line in enumerate(f):
            if n in chosen:
                w.write(line)
    return len(chosen)


def _ratio_stats(pairs: list[tuple[float, float]]) -> dict[str, float]:
    ratios = sorted(g / p for p, g in pairs if p > 0)
    if not ratios:
        return {}
    return {
        "median": round(statistics.median(ratios), 3),
        "p90": round(ratios[int(0.9 * (len(ratios) - 1))], 3),
        "sum_ratio": round(sum(g for _, g in pairs) / sum(p for p, _ in pairs), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--programs", type=int, default=250, help="random corpus programs to draw")
    parser.add_argument(
        "--any-record",
        action="store_true",
        help="draw from every record, not only single-pass ones tested ok",
    )
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--examples", action="store_true", help="the bundled examples, not the corpus")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--deadline", type=float, default=30.0, help="validation's compile deadline (s)")
    parser.add_argument("--size", default="128x128")
    parser.add_argument("--times", default="0.5,1.5,3,6")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    size = tuple(int(x) for x in args.size.lower().split("x"))
    params = {"size": size, "times": [float(t) for t in args.times.split(",")], "repeats": args.repeats}
    figures: dict[str, Any] = {"cpus": os.cpu_count(), "load_1min_before": round(os.getloadavg()[0], 2)}
    figures["params"] = params | {"seed": args.seed}

    with tempfile.TemporaryDirectory() as tmp:
        catalogue = open_catalogue(str(Path(tmp) / "c.db"), create=True)
        if args.examples:
            for name in EXAMPLE_PATHS:
                import_path(catalogue, EXAMPLES / name)
            figures["input"] = "bundled examples"
        elif CORPUS.exists():
            drawn = corpus_slice(
                CORPUS, args.programs, args.seed, Path(tmp) / "slice.jsonl", any_record=args.any_record
            )
            import_path(catalogue, Path(tmp) / "slice.jsonl")
            which = "records" if args.any_record else "single-pass records tested ok"
            figures["input"] = f"{drawn} random {which} of {CORPUS.name} (seed {args.seed})"
        else:
            sys.exit(f"{CORPUS} is absent: give --examples")
        options = ValidateOptions(workers=args.workers, compile_deadline=args.deadline)
        validated: list[dict[str, Any]] = []
        started = time.perf_counter()
        report = validate(catalogue, options=options, progress=validated.append)
        figures["validation"] = {
            "renderer": report.renderer,
            "seconds": round(time.perf_counter() - started, 1),
            "statuses": dict(Counter(r["status"] for r in validated)),
        }
        print(f"input: {figures['input']}\nrenderer: {report.renderer}")
        done = figures["validation"]
        print(f"validated {len(validated)} in {done['seconds']} s: {done['statuses']}")
        items = [load_program(catalogue, r["program"]) for r in validated if r["status"] == "ok"]
        catalogue.close()

    started = time.perf_counter()
    with SandboxPool(options, TASK) as pool:
        results = list(pool.run(items, params))
    figures["comparison_seconds"] = round(time.perf_counter() - started, 1)
    compared = [r for r in results if "differing_share" in r]
    introduced = [r for r in results if "guarded_error" in r and "plain_error" not in r]
    refused = [r for r in introduced if r["guarded_error"].startswith("unsupported")]
    differing = [r for r in compared if r["differing_share"] > 0]
    tripped = [r for r in compared if r["tripped"]]
    figures |= {
        "ok_programs": len(items),
        "compared": len(compared),
        "identical": len(compared) - len(differing),
        "largest_difference": max((r["largest_difference"] for r in compared), default=0),
        "not_compared": dict(Counter(r["status"] for r in results if "differing_share" not in r)),
        "guard_compile_failures": len(introduced) - len(refused),
        "guard_refused": len(refused),
        "guard_failures": [(r["program"], r["guarded_error"][:200]) for r in introduced],
        "tripped": [r["program"] for r in tripped],
        "differing": [
            (r["program"], round(r["differing_share"], 5), r["largest_difference"], r["tripped"])
            for r in differing
        ],
        "compile_ratio": _ratio_stats([(r["plain_compile_ms"], r["guarded_compile_ms"]) for r in compared]),
        "first_frame_ratio": _ratio_stats(
            [(r["plain_first_frame_ms"], r["guarded_first_frame_ms"]) for r in compared]
        ),
        "frame_ratio": _ratio_stats([(r["plain_frame_ms"], r["guarded_frame_ms"]) for r in compared]),
        "slowest_guarded": [  # the programs whose frames the guard slowed most: where it costs
            (r["program"], round(r["plain_frame_ms"], 1), round(r["guarded_frame_ms"], 1))
            for r in sorted(compared, key=lambda r: r["guarded_frame_ms"] / max(r["plain_frame_ms"], 1e-6))[
                -5:
            ]
        ],
        "load_1min_after": round(os.getloadavg()[0], 2),
    }
    print(f"ok programs: {len(items)}, compared: {len(compared)} ({figures['comparison_seconds']} s)")
    print(
        f"compile failures the guard introduced: {figures['guard_compile_failures']}, refused: {len(refused)}"
    )
    for key, why in figures["guard_failures"]:
        print(f"  {key}: {why}")
    print(f"guard tripped: {len(tripped)} {figures['tripped']}")
    print(
        f"identical pictures: {figures['identical']}, programs whose pictures differ: {len(differing)}"
        f" (largest difference of any pixel channel, of 255: {figures['largest_difference']})"
    )
    for key, share, most, trip in figures["differing"]:
        print(f"  {key}: {share:.3%} of pixels, largest difference {most}, tripped {trip}")
    for name in ("compile_ratio", "first_frame_ratio", "frame_ratio"):
        print(f"guarded / unguarded {name.replace('_ratio', '').replace('_', ' ')} time: {figures[name]}")
    slowest = ", ".join(f"{key} {plain} → {guarded} ms" for key, plain, guarded in figures["slowest_guarded"])
    print(f"frames the guard slowed most (sum over a program's frames): {slowest}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
