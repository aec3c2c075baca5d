"""Benchmark: the pretraining stream on a snapshot of many real programs (issue 11 item 6).

With ~20,000 programs nearly every sample meets a program its loader worker has not compiled, and
on llvmpipe a program's first draw compiles it to machine code. This measures what that costs
and what the levers give: samples grouped by program (``samples_per_program`` m: a batch of B
compiles B/m programs) and Mesa's on-disk shader cache (a program compiled once, by validation or
an earlier run, is loaded from disk by the next process instead of compiled again).

Input: an exported snapshot (``SNAPSHOT``), opened and verified as ``pretrain train`` opens it.
``--tested-ok DUMP`` samples only the programs a Shadertoy JSON-lines dump's ``test`` field marks
``ok`` (the public dataset rendered them under a deadline): an unvetted snapshot holds programs
whose first draw takes minutes on llvmpipe, which stall a worker (vetting keeps them out); a
vetted snapshot needs no such filter.

Each configuration runs in a process of its own, with its own Mesa cache:

* ``cold``: ``MESA_SHADER_CACHE_DIR`` a new, empty folder: every program is compiled;
* ``warm``: the folder a ``cold`` run of the same configuration filled (same seed, same
  programs), in a new process: what a run after validation (or a second run) sees;
* ``primed``: a folder filled first by compiling and drawing every program the stream samples
  once, in one process (as validation leaves it), then the configuration in a new process: for
  long runs over a few hundred programs, where a cold pass would take the whole budget;
* ``off``: ``MESA_SHADER_CACHE_DISABLE=true``.

Measured per configuration (workers, m, cache): the snapshot's open time (verification
included), the time from ``iter(loader)`` to the first batch (workers spawned, GL contexts
made, the first batch's compiles), images/s over the later batches, compiles a batch (failed
ones included; failed compiles are the share the stream skips), and the RSS of the loader's
processes (the iterating process and its workers, psutil) after each batch: first, last, most.
For the memory over many batches, run one configuration with many small batches (below).

Usage:
  python benchmarks/bench_stream_scale.py SNAPSHOT [--tested-ok DUMP] [--workers 0,1,2]
      [--group 1,8] [--cache cold,warm] [--batches 12] [--batch-size 64] [--size 64]
  python benchmarks/bench_stream_scale.py SNAPSHOT --workers 1 --batches 2000 --batch-size 16
      --size 32 --group 16 --programs 600 --cache cold,warm
Prints one line per configuration and a final JSON line; a configuration that outlives
``--timeout`` reports the batches it made. Nothing is written outside a temporary folder (the
Mesa caches, each configuration's per-batch trace), removed at the end unless ``--keep-cache DIR``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def tested_ok_weights(snapshot, dump: str):
    """1 for each snapshot program the dump's ``test`` field marks ``ok``, else 0."""
    import numpy as np

    ok = set()
    with gzip.open(dump, "rt", encoding="utf-8") if dump.endswith(".gz") else open(dump) as fh:
        for line in fh:
            record = json.loads(line)
            if record.get("test") == "ok":
                ok.add(f"shadertoy:{record['id']}")
    return np.array([1.0 if e["program"] in ok else 0.0 for e in snapshot.entries])


def loader_rss_mb() -> float:
    """RSS of this process and its children (the loader workers), in MiB."""
    import psutil

    me = psutil.Process()
    total = me.memory_info().rss
    for child in me.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def sampled_weights(snapshot, spec: dict):
    """The stream's sampling weights: the tested-ok programs, then a seeded subset of them."""
    import numpy as np

    from pretrain.train import program_subset

    weights = tested_ok_weights(snapshot, spec["tested_ok"]) if spec.get("tested_ok") else None
    if spec.get("programs"):  # a seeded subset of those, as pretrain train --programs chooses
        subset = program_subset(len(snapshot), spec["programs"], 0)
        if weights is not None:
            order = np.flatnonzero(weights)
            subset = np.zeros(len(snapshot))
            subset[np.random.default_rng([0, 7919]).permutation(order)[: spec["programs"]]] = 1.0
        weights = subset
    return weights


def prime(spec: dict) -> dict:
    """Compile and draw once every program the stream samples (fills the Mesa cache)."""
    import numpy as np

    from pretrain.data import ProgramFailed, StreamConfig, _Renderer
    from pretrain.snapshot import open_snapshot

    snapshot = open_snapshot(spec["snapshot"])
    weights = sampled_weights(snapshot, spec)
    indices = range(len(snapshot)) if weights is None else np.flatnonzero(weights)
    renderer = _Renderer(snapshot, StreamConfig(size=spec["size"], cache_programs=1))
    out = np.empty((spec["size"], spec["size"], 3), np.uint8)
    started, failed = time.perf_counter(), 0
    for index in indices:
        try:
            renderer.render_into(int(index), 1.0, out)
        except ProgramFailed:
            failed += 1
    renderer.close()
    return {"primed": len(indices), "failed": failed, "seconds": round(time.perf_counter() - started, 1)}


def run_one(spec: dict) -> dict:
    """One configuration, in this process (its environment already set by the parent)."""
    from pretrain.data import ShaderStream, StreamConfig
    from pretrain.loader import make_loader
    from pretrain.snapshot import open_snapshot

    if spec.get("prime"):
        return prime(spec)
    t0 = time.perf_counter()
    snapshot = open_snapshot(spec["snapshot"])
    open_s = time.perf_counter() - t0
    weights = sampled_weights(snapshot, spec)
    config = StreamConfig(
        size=spec["size"],
        batch_size=spec["batch_size"],
        seed=spec["seed"],
        samples_per_program=spec["group"],
        cache_programs=spec["cache_programs"],
    )
    stream = ShaderStream(snapshot, config, weights=weights, max_batches=spec["batches"])
    rows = []
    start = time.perf_counter()
    with open(spec["trace"], "w") as trace:  # as it goes: a run cut short still says how it went
        for batch in make_loader(stream, spec["workers"]):
            rows.append(
                {
                    "t": time.perf_counter() - start,
                    "compiles": int(batch["compiles"]),
                    "skipped": int(batch["skipped"]),
                    "rss_mb": loader_rss_mb(),
                }
            )
            trace.write(json.dumps(rows[-1]) + "\n")
            trace.flush()
    b = spec["batch_size"]
    steady = rows[1:]
    steady_s = rows[-1]["t"] - rows[0]["t"] if steady else 0.0
    compiles = sum(r["compiles"] for r in rows)
    skipped = sum(r["skipped"] for r in rows)
    groups = spec["batches"] * -(-b // spec["group"])
    rss = [r["rss_mb"] for r in rows]
    return {
        **{k: spec[k] for k in ("workers", "group", "cache", "batch_size", "size", "batches")},
        "programs_sampled": int((weights > 0).sum()) if weights is not None else len(snapshot),
        "open_s": round(open_s, 2),
        "first_batch_s": round(rows[0]["t"], 2),
        "images_per_s": round(len(steady) * b / steady_s, 2) if steady_s else None,
        "compiles_per_batch": round(compiles / len(rows), 2),
        "failed_share": round(skipped / max(1, groups + skipped), 4),  # draws that did not compile
        "rss_mb_first": round(rss[0]),
        "rss_mb_last": round(rss[-1]),
        "rss_mb_max": round(max(rss)),
        "rss_mb_trace": [round(x) for x in rss[:: max(1, len(rss) // 40)]],
        "seconds": round(rows[-1]["t"], 1),
    }


def partial_result(spec: dict) -> dict:
    """What the trace of a configuration cut short says: its batches, compiles and RSS."""
    path = Path(spec.get("trace") or "")
    rows = [json.loads(ln) for ln in path.read_text().splitlines()] if path.is_file() else []
    if not rows:
        return {"batches_done": 0}
    rss = [r["rss_mb"] for r in rows]
    return {
        "batches_done": len(rows),
        "seconds": round(rows[-1]["t"], 1),
        "compiles": sum(r["compiles"] for r in rows),
        "rss_mb_first": round(rss[0]),
        "rss_mb_last": round(rss[-1]),
        "rss_mb_max": round(max(rss)),
        "rss_mb_trace": [round(x) for x in rss[:: max(1, len(rss) // 40)]],
    }


def launch(spec: dict, env: dict[str, str], timeout: float) -> dict:
    """Run one configuration in a new process with ``env`` added; its result, or why it has none."""
    cmd = [sys.executable, __file__, "--one", json.dumps(spec)]
    try:
        done = subprocess.run(
            cmd, env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        why = f"no result within {timeout:.0f} s (a program's first draw can take minutes)"
        return {**spec, "error": why, **partial_result(spec)}
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode or not lines:
        return {**spec, "error": (done.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("snapshot", nargs="?")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--tested-ok", help="sample only the programs this dump's test field marks ok")
    parser.add_argument("--workers", default="0,1,2")
    parser.add_argument("--group", default="8", help="samples_per_program values, comma-separated")
    parser.add_argument("--cache", default="cold,warm", help="cold, warm, primed and/or off")
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--cache-programs", type=int, default=64)
    parser.add_argument("--programs", type=int, default=0, help="sample only N programs (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds a configuration may take")
    parser.add_argument("--keep-cache", help="use (and keep) this folder for the Mesa caches")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(json.loads(args.one))), flush=True)
        return
    if not args.snapshot:
        parser.error("give an exported snapshot folder")
    caches = Path(args.keep_cache or tempfile.mkdtemp(prefix="bench-stream-scale-"))
    caches.mkdir(parents=True, exist_ok=True)
    results = []
    for workers in [int(w) for w in args.workers.split(",")]:
        for group in [int(g) for g in args.group.split(",")]:
            spec = {
                "snapshot": str(Path(args.snapshot).resolve()),
                "tested_ok": args.tested_ok,
                "workers": workers,
                "group": group,
                "batches": args.batches,
                "batch_size": args.batch_size,
                "size": args.size,
                "seed": args.seed,
                "cache_programs": args.cache_programs,
                "programs": args.programs,
            }
            folder = caches / f"w{workers}-m{group}-s{args.seed}"
            for cache in args.cache.split(","):
                env = {"MESA_SHADER_CACHE_MAX_SIZE": "8G"}
                if cache == "off":
                    env["MESA_SHADER_CACHE_DISABLE"] = "true"
                else:
                    env["MESA_SHADER_CACHE_DIR"] = str(folder)
                    env["MESA_SHADER_CACHE_DISABLE"] = "false"
                    if cache in ("cold", "primed") and folder.exists():
                        subprocess.run(["rm", "-rf", str(folder)], check=True)
                    folder.mkdir(parents=True, exist_ok=True)  # Mesa makes only the last level
                if cache == "primed":
                    primed = launch({**spec, "prime": True}, env, args.timeout)
                    print(f"primed the Mesa cache: {primed}", flush=True)
                trace = caches / f"trace-w{workers}-m{group}-{cache}.jsonl"
                result = launch({**spec, "cache": cache, "trace": str(trace)}, env, args.timeout)
                if cache != "off" and folder.exists():
                    result["mesa_cache_mb"] = round(
                        sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20, 1
                    )
                results.append(result)
                print(
                    " ".join(f"{k}={v}" for k, v in result.items() if k not in ("snapshot", "rss_mb_trace")),
                    flush=True,
                )
    if not args.keep_cache:
        subprocess.run(["rm", "-rf", str(caches)], check=False)
    print(json.dumps({"results": results}))


if __name__ == "__main__":
    main()
