"""Benchmark: milliseconds a frontier claim of 64 takes as the queue of pending requests grows.

A fresh SQLite catalogue (migrated to head), requests added in steps up to 200,000 pending, three
priorities; each claim's requests are put back before the next, so the queue stays full.
``--without-claim-order-index`` drops migration 0004's index first, to show what it buys.

Usage: ``python benchmarks/bench_claim.py [--without-claim-order-index]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corpus.db import open_catalogue  # noqa: E402
from harvest.frontier import Frontier, NewRequest  # noqa: E402

SIZES = (1_000, 10_000, 100_000, 200_000)
CLAIMS = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--without-claim-order-index", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        catalogue = open_catalogue(f"{tmp}/c.db", create=True)
        if args.without_claim_order_index:
            with catalogue.session() as s:
                s.execute(text("DROP INDEX ix_crawl_request_claim_order"))
        frontier = Frontier(catalogue, "shadertoy-api")
        have = 0
        for n in SIZES:
            frontier.add(NewRequest(f"https://example.org/{i}", priority=i % 3) for i in range(have, n))
            have = n
            spent = 0.0
            for _ in range(CLAIMS):
                started = time.perf_counter()
                frontier.claim(64)
                spent += time.perf_counter() - started
                with catalogue.session() as s:
                    s.execute(text("UPDATE crawl_request SET state = 'pending' WHERE state = 'in_flight'"))
            print(f"{n:>8,} pending: {spent / CLAIMS * 1000:6.1f} ms a claim of 64", flush=True)
        catalogue.close()


if __name__ == "__main__":
    main()
