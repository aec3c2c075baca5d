"""Benchmark: claims with a long queue, and validators sharing one catalogue (issue 12 item 5).

1. **Claims.** Milliseconds a claim of 64 takes with 1,000,000 queued, on PostgreSQL and SQLite:
   validation jobs (``corpus.validation_queue.claim``: the open jobs of one renderer, oldest
   first, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and crawl requests (``Frontier.claim``: the
   due requests of one source, highest priority first, three priorities). The queues are filled
   with bulk inserts (jobs all name one representative program: a claim never reads it). Claimed
   jobs keep their leases, so later claims walk past the live ones as validators sharing a queue
   would; claimed crawl requests are put back after each claim (untimed), so the queue stays full.
   Median and p95 of --claims claims, after 3 untimed ones.
2. **Validation rate.** Programs/s of ``render validate`` in 1 and in 2 processes (one sandbox
   worker each) sharing one catalogue, on PostgreSQL and SQLite, for the first --programs records
   of a real Shadertoy dump that its ``test`` field marks ok (--real), validated at 64x64 with
   the default time samples and a 10 s deadline. Mesa's shader cache is off, so no run reuses
   another's compiles. The wall time runs from the processes' start to the last one's end.

It starts a throwaway PostgreSQL cluster (tests/postgres.py; fsync on) under --workdir and
removes it at the end. Prints one line per figure and a final JSON line, with the load average
before and after.

    nice .venv/bin/python benchmarks/bench_claims.py --real /work/shared/corpus/shadertoys-public.jsonl.gz
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select, text  # noqa: E402

from corpus import validation_queue  # noqa: E402
from corpus.bulk import insert_rows  # noqa: E402
from corpus.db import Catalogue, open_catalogue, refresh_statistics  # noqa: E402
from corpus.models import CrawlRequest, Program, ValidationJob  # noqa: E402
from harvest.frontier import Frontier  # noqa: E402
from harvest.importing import import_path  # noqa: E402
from tests.conftest import make_record  # noqa: E402
from tests.corpus.helpers import store  # noqa: E402
from tests.postgres import Cluster  # noqa: E402

RENDERER = "Mesa | llvmpipe (LLVM 15.0.6, 256 bits) | 4.5 (Core Profile) Mesa 22.3.6"
SOURCE = "shadertoy-api"
SETTINGS = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on", "shared_buffers": "1GB"}
FILL = 50_000

VALIDATOR = """
import sys
from corpus.db import open_catalogue
from render.validate import ValidateOptions, validate
options = ValidateOptions(workers=1, sizes=((64, 64),), compile_deadline=10.0, frame_deadline=5.0)
report = validate(open_catalogue(sys.argv[1]), options=options)
print(report.programs, report.leases_lost)
"""


def fill_queues(catalogue: Catalogue, queued: int) -> None:
    """``queued`` validation jobs and ``queued`` pending crawl requests, in bulk."""
    store(catalogue, [make_record("representative")])
    with catalogue.session() as s:
        program_id = s.scalar(select(Program.id))
    now = datetime.now(UTC)
    for start in range(0, queued, FILL):
        ids = range(start, min(start + FILL, queued))
        with catalogue.session() as s:
            conn = s.connection()
            insert_rows(
                conn,
                ValidationJob.__table__,
                [
                    {
                        "code_sha256": f"{i:064x}",
                        "dialect": "shadertoy",
                        "renderer": RENDERER,
                        "program_id": program_id,
                        "queued_at": now,
                    }
                    for i in ids
                ],
            )
            insert_rows(
                conn,
                CrawlRequest.__table__,
                [
                    {
                        "source": SOURCE,
                        "url": f"https://www.shadertoy.com/api/v1/shaders/{i:06x}",
                        "method": "GET",
                        "fingerprint": f"{i:064x}",
                        "kind": "shader",
                        "priority": i % 3,
                        "state": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "updated_at": now,
                    }
                    for i in ids
                ],
            )
    refresh_statistics(catalogue)
    if catalogue.dialect == "postgresql":  # what autovacuum does to a queue that has lived a while
        with catalogue.session() as s:
            s.execute(text("ANALYZE validation_job"))
            s.execute(text("ANALYZE crawl_request"))


def _summary(times: list[float]) -> dict[str, float]:
    ms = sorted(t * 1000 for t in times)
    return {"median_ms": round(statistics.median(ms), 2), "p95_ms": round(ms[int(len(ms) * 0.95) - 1], 2)}


def claim_benchmarks(catalogue: Catalogue, claims: int) -> dict[str, dict[str, float]]:
    frontier = Frontier(catalogue, SOURCE)
    jobs, requests = [], []
    for i in range(claims + 3):
        started = time.perf_counter()
        got = validation_queue.claim(catalogue, RENDERER, f"bench:{i}", 64, lease_seconds=3600)
        jobs.append(time.perf_counter() - started)
        assert len(got) == 64
        started = time.perf_counter()
        taken = frontier.claim(64)
        requests.append(time.perf_counter() - started)
        assert len(taken) == 64
        frontier.release([r.id for r in taken])
    return {"validation_jobs": _summary(jobs[3:]), "crawl_requests": _summary(requests[3:])}


def real_slice(dump: Path, n: int, into: Path) -> Path:
    """The first ``n`` records of ``dump`` whose ``test`` field is ok, as a JSON-lines file."""
    out = into / "slice.jsonl"
    kept = 0
    with gzip.open(dump, "rt") as src, out.open("w") as dst:
        for line in src:
            if json.loads(line).get("test") == "ok":
                dst.write(line)
                kept += 1
                if kept == n:
                    break
    return out


def validation_rate(catalogue: Catalogue, processes: int) -> dict[str, float]:
    with catalogue.session() as s:
        s.execute(text("DELETE FROM profile"))
        s.execute(text("DELETE FROM validation"))
        s.execute(text("DELETE FROM validation_job"))
    env = os.environ | {"MESA_SHADER_CACHE_DISABLE": "true", "PYTHONPATH": str(Path(__file__).parents[1])}
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", VALIDATOR, catalogue.url], env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(processes)
    ]
    outputs = [p.communicate()[0].split() for p in procs]
    wall = time.perf_counter() - started
    validated = sum(int(out[0]) for out in outputs)
    with catalogue.session() as s:
        stored = s.scalar(text("SELECT count(*) FROM validation"))
    return {
        "processes": processes,
        "validated": validated,
        "stored": stored,
        "leases_lost": sum(int(out[1]) for out in outputs),
        "seconds": round(wall, 1),
        "programs_per_s": round(stored / wall, 2),
    }


def _new_catalogue(backend: str, name: str, cluster: Cluster, work: Path) -> Catalogue:
    if backend == "postgresql":
        cluster.execute(f'CREATE DATABASE "{name}"')
        return open_catalogue(cluster.url(name), create=True)
    return open_catalogue(str(work / f"{name}.db"), create=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queued", type=int, default=1_000_000)
    ap.add_argument("--claims", type=int, default=50)
    ap.add_argument("--real", type=Path, help="a Shadertoy JSON-lines dump (.gz) for the validation rate")
    ap.add_argument("--programs", type=int, default=100)
    ap.add_argument("--workdir", type=Path)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-claims-"))
    work.mkdir(parents=True, exist_ok=True)
    os.chmod(work, 0o755)  # the cluster's folder inside must be reachable by the postgres user
    results: dict[str, object] = {"queued": args.queued, "load_before": os.getloadavg()}
    cluster = Cluster(SETTINGS, parent=str(work))
    try:
        for backend in ("postgresql", "sqlite"):
            catalogue = _new_catalogue(backend, "claims", cluster, work)
            started = time.perf_counter()
            fill_queues(catalogue, args.queued)
            print(f"{backend}: {args.queued:,} queued in {time.perf_counter() - started:.0f} s", flush=True)
            figures = claim_benchmarks(catalogue, args.claims)
            for what, summary in figures.items():
                print(f"{backend}: claim 64 {what}: {summary}", flush=True)
            results[f"claims_{backend}"] = figures
            catalogue.close()
        if args.real:
            records = real_slice(args.real, args.programs, work)
            for backend in ("postgresql", "sqlite"):
                catalogue = _new_catalogue(backend, "validate", cluster, work)
                import_path(catalogue, records)
                for processes in (1, 2):
                    rate = validation_rate(catalogue, processes)
                    print(f"{backend}: validate, {processes} process(es): {rate}", flush=True)
                    results[f"validate_{backend}_{processes}"] = rate
                catalogue.close()
    finally:
        results["load_after"] = os.getloadavg()
        cluster.stop()
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
