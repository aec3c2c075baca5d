"""Crawl throughput against the loopback fixture server (issue 3's target: >= 300 programs/s for
5,000 shaders through the API source with delays at zero, 2 cores).

    .venv/bin/python benchmarks/bench_crawl.py --n 2000 --concurrency 8

Prints programs/s, the share of time in the frontier's bookkeeping, peak RSS, and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corpus.db import open_catalogue  # noqa: E402
from corpus.frontier import Frontier  # noqa: E402
from harvest.crawling import crawl  # noqa: E402
from harvest.fetcher import FetchPolicy  # noqa: E402
from tests.harvest.fixture_server import Answer, FixtureServer  # noqa: E402

KEY = "bench"


def shader(sid: str, n: int) -> bytes:
    body = "\n".join(
        f"float f{k}(vec2 p){{ return sin(p.x * {n % 97 + k}.0) * cos(p.y); }}" for k in range(40)
    )
    code = body + "\nvoid mainImage(out vec4 c, in vec2 p){ c = vec4(f1(p), f2(p), 0.5, 1.0); }"
    doc = {
        "Shader": {
            "ver": "0.1",
            "info": {"id": sid, "name": f"bench {n}", "username": "bench"},
            "renderpass": [{"inputs": [], "outputs": [], "code": code, "name": "Image", "type": "image"}],
        }
    }
    return json.dumps(doc).encode()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()
    ids = [f"b{i:05d}" for i in range(args.n)]
    timings = {"frontier": 0.0}
    for name in ("add", "claim", "done", "fail", "recover"):
        original = getattr(Frontier, name)

        def timed(self, *a, _original=original, **k):
            t = time.perf_counter()
            try:
                return _original(self, *a, **k)
            finally:
                timings["frontier"] += time.perf_counter() - t

        setattr(Frontier, name, timed)
    with FixtureServer() as s:
        s.route("/robots.txt", Answer(200, b"", {"Content-Type": "text/plain"}))
        s.route(
            f"/api/v1/shaders?key={KEY}",
            Answer(200, json.dumps({"Shaders": args.n, "Results": ids}).encode()),
        )
        for n, sid in enumerate(ids):
            s.route(f"/api/v1/shaders/{sid}?key={KEY}", Answer(200, shader(sid, n)))
        size = len(shader(ids[0], 0))
        cat = open_catalogue(str(Path(tempfile.mkdtemp()) / "crawl.db"), create=True)
        t = time.perf_counter()
        report = crawl(
            cat,
            "shadertoy-api",
            base_url=s.base,
            key=KEY,
            policy=FetchPolicy(delay=0.0, concurrency=args.concurrency),
        )
        secs = time.perf_counter() - t
    rate = report.added / secs
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    share = timings["frontier"] / secs
    print(
        f"{report.added} programs ({size} B responses) in {secs:.1f} s"
        f" = {rate:.0f} programs/s (target >= 300)"
    )
    print(
        f"frontier bookkeeping {share:.0%} of the time (target <= 10 %);"
        f" peak RSS of this process {rss:.0f} MB (includes the in-process server)"
    )
    print(
        json.dumps(
            {
                "programs": report.added,
                "seconds": round(secs, 2),
                "programs_per_s": round(rate),
                "frontier_share": round(share, 3),
                "peak_rss_mb": round(rss),
            }
        )
    )


if __name__ == "__main__":
    main()
