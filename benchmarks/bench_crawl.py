"""Crawl throughput, memory and politeness against a loopback API server (issue 3's targets:
>= 300 programs/s for 5,000 shaders through the API source with delays at zero on 2 cores,
resident memory flat (<= 300 MB) from 1,000 to 20,000 programs, frontier bookkeeping <= 10 %
of the time, and the configured rate kept with default politeness).

    .venv/bin/python benchmarks/bench_crawl.py --n 5000             # speed
    .venv/bin/python benchmarks/bench_crawl.py --sizes 1000,20000   # memory, one process per size
    .venv/bin/python benchmarks/bench_crawl.py --polite --n 12      # default politeness, request log

The server (benchmarks/api_server.py) runs in its own process, so the figures are the crawler's:
peak RSS is this process's alone. Each shader answer is ~2.5 KB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.api_server import BENCH_KEY, shader  # noqa: E402
from corpus.db import open_catalogue  # noqa: E402
from harvest.crawling import crawl  # noqa: E402
from harvest.fetcher import FetchPolicy  # noqa: E402
from harvest.frontier import Frontier  # noqa: E402


def start_server(n: int, log: Path | None = None) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, str(ROOT / "benchmarks" / "api_server.py"), "--n", str(n)]
    if log is not None:
        cmd += ["--log", str(log)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}"


def time_frontier() -> dict[str, float]:
    """Wrap the frontier's methods to add up the time the crawl spends in them."""
    timings = {"frontier": 0.0}
    for name in ("add", "claim", "done_many", "fail", "retry_later", "recover", "release", "counts", "block"):
        original = getattr(Frontier, name)

        def timed(self, *a, _original=original, **k):
            t = time.perf_counter()
            try:
                return _original(self, *a, **k)
            finally:
                timings["frontier"] += time.perf_counter() - t

        setattr(Frontier, name, timed)
    return timings


def rss_mb() -> float:
    """This process's resident memory now (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def speed(n: int, concurrency: int) -> dict:
    timings = time_frontier()
    server, base = start_server(n)
    rss_at: dict[int, float] = {}  # resident MB after the first batch past each thousand programs

    def sample(progress) -> None:
        thousands = progress.report.added // 1000 * 1000
        if thousands and thousands not in rss_at:
            rss_at[thousands] = round(rss_mb())

    try:
        cat = open_catalogue(str(Path(tempfile.mkdtemp()) / "crawl.db"), create=True)
        t = time.perf_counter()
        cpu = time.process_time()
        report = crawl(
            cat,
            "shadertoy-api",
            base_url=base,
            key=BENCH_KEY,
            policy=FetchPolicy(delay=0.0, concurrency=concurrency),
            progress=sample,
        )
        secs = time.perf_counter() - t
        cpu = time.process_time() - cpu
    finally:
        server.terminate()
        server.wait()
    return {
        "programs": report.added,
        "failed": report.failed + report.parse_errors,
        "seconds": round(secs, 2),
        "programs_per_s": round(report.added / secs),
        "crawler_cpu_s": round(cpu, 2),
        "frontier_share": round(timings["frontier"] / secs, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "rss_mb_at": {k: v for k, v in rss_at.items() if k in (1000, 2000, 5000) or k % 5000 == 0},
    }


def polite(n: int) -> dict:
    """Default politeness (concurrency 2, delay 1 s with jitter): read the rate off both logs."""
    log: list = []
    server_log = Path(tempfile.mkdtemp()) / "requests.tsv"
    server, base = start_server(n, server_log)
    try:
        cat = open_catalogue(str(Path(tempfile.mkdtemp()) / "crawl.db"), create=True)
        policy = FetchPolicy()
        report = crawl(cat, "shadertoy-api", base_url=base, key=BENCH_KEY, policy=policy, log=log)
    finally:
        server.terminate()
        server.wait()
    starts = sorted(start for start, *_ in log)
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    in_flight = max(sum(1 for s, e, *_ in log if s <= t < e) for t in starts)
    arrivals = sorted(float(line.split("\t")[0]) for line in server_log.read_text().splitlines())
    server_gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    return {
        "programs": report.added,
        "requests": len(starts),
        "concurrency": policy.concurrency,
        "delay_s": policy.delay,
        "jitter": policy.jitter,
        "min_gap_s": round(min(gaps), 3),
        "mean_gap_s": round(sum(gaps) / len(gaps), 3),
        "max_gap_s": round(max(gaps), 3),
        "server_min_gap_s": round(min(server_gaps), 3),
        "max_in_flight": in_flight,
        "requests_per_s": round((len(starts) - 1) / (starts[-1] - starts[0]), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000, help="shaders the API lists")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--sizes", help="comma-separated n values, each crawled in a fresh process (memory)")
    ap.add_argument("--polite", action="store_true", help="default politeness; prints the request log's rate")
    args = ap.parse_args()
    if args.sizes:
        for n in map(int, args.sizes.split(",")):
            cmd = [sys.executable, __file__, "--n", str(n), "--concurrency", str(args.concurrency)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            print(out.strip().splitlines()[-1], flush=True)
        return
    if args.polite:
        print(json.dumps(polite(args.n)))
        return
    result = speed(args.n, args.concurrency)
    print(
        f"{result['programs']} programs ({len(shader('b00000', 0))} B answers) in {result['seconds']} s"
        f" = {result['programs_per_s']} programs/s (target >= 300); crawler CPU {result['crawler_cpu_s']} s;"
        f" frontier {result['frontier_share']:.0%} of the time (target <= 10 %);"
        f" peak RSS {result['peak_rss_mb']} MB (target <= 300)"
    )
    print(json.dumps({"n": args.n, "concurrency": args.concurrency, **result}))


if __name__ == "__main__":
    main()
