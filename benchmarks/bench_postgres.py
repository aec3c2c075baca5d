"""PostgreSQL catalogue benchmarks (issue 12, the corpus side), next to SQLite's.

Targets: import >= 2,000 records/s; `corpus ls` with two filters <= 100 ms and `--code` <= 300 ms
at 1,000,000 synthetic programs.

It starts a throwaway PostgreSQL cluster of its own (tests/postgres.py: initdb into a folder
under --workdir, a Unix socket there, run as the postgres user when started as root) with fsync
on, 2 GB of shared buffers and 1 GB for index builds, and removes it at the end (--keep keeps
the work folder and prints how to start the cluster again).

    .venv/bin/python benchmarks/bench_postgres.py                    # 1,000,000 programs
    .venv/bin/python benchmarks/bench_postgres.py --programs 100000 --sqlite
    .venv/bin/python benchmarks/bench_postgres.py --real /work/shared/corpus/shadertoys-public.jsonl.gz

What it measures, in order:

1. Import rate: ``harvest import`` (import_path, licence detection and exact de-duplication
   included) of --import-records synthetic JSON-lines records into a fresh catalogue, and of a
   real dump when --real names one (a .gz is decompressed into the work folder first).
2. A catalogue of --programs synthetic programs (benchmarks/synthetic.py: ~2.5 KB each, one in
   ten with a licence header, one in twenty a near copy), stored through ProgramStore in batches
   of 5,000 as an import would (without writing and parsing JSON lines); then exact duplicates
   are marked, the code-search index is brought up to date in bulk (as ``corpus index`` does)
   and the planner's statistics are refreshed.
3. ``corpus ls`` at that size: list_programs, the first 100 rows in key order, median of 5
   after a warm-up, for the filter pairs of bench_catalogue.py and a few more, and code needles
   from one in every program to one in none (on PostgreSQL the first 2,000 programs are tested
   one by one, then the trigram index answers: corpus.pg_listing). Two-filter listings also
   count every match, as ``corpus ls`` does for its "showing 100 of N" line.

With --sqlite the same is done on SQLite. At 1,000,000 programs expect about 10 GB in the work
folder and, on 2 cores, about an hour with --sqlite. Prints one line per figure and a final
JSON line.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_catalogue import timed  # noqa: E402
from benchmarks.synthetic import synthetic_records, write_jsonl  # noqa: E402
from corpus.cli import LS_COUNT_SECONDS  # noqa: E402
from corpus.db import Catalogue, open_catalogue, refresh_statistics  # noqa: E402
from corpus.queries import (  # noqa: E402
    ProgramFilter,
    count_programs,
    count_programs_within,
    list_programs,
    refresh_code_index,
)
from corpus.store import ProgramStore, mark_exact_duplicates  # noqa: E402
from harvest.formats.shadertoy import shadertoys_flat_record  # noqa: E402
from harvest.importing import import_path  # noqa: E402
from tests.postgres import Cluster  # noqa: E402

#: Server settings for figures (the tests' cluster runs without fsync).
BENCH_SETTINGS = {
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "shared_buffers": "2GB",
    "effective_cache_size": "8GB",
    "work_mem": "64MB",
    "maintenance_work_mem": "1GB",
    "max_wal_size": "8GB",
}
FILL_BATCH = 5000

TWO_FILTERS = {
    "ls_licence_and_tag": ProgramFilter(licence_classes=["permissive"], tags=["fractal"]),
    "ls_source_and_author": ProgramFilter(sources=["shadertoy"], authors=["author42"]),
    "ls_text_and_dialect": ProgramFilter(text="neon", dialects=["shadertoy"]),
    "ls_spdx_and_tag": ProgramFilter(spdx=["MIT"], tags=["noise"]),
    "ls_rare_title_and_source": ProgramFilter(text="spiral 123457", sources=["shadertoy"]),
}
NEEDLES = [
    "smoothstep(0.0",  # about 7 % of programs
    "fragColor = vec4(mix",  # about 11 %
    "iResolution",  # nearly all
    "helper3_",  # all
    "43758.5453",  # all
    "_123456(vec2",  # a handful: a helper's random suffix
    "no such code",  # none
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", type=int, default=1_000_000, help="size of the query catalogue")
    ap.add_argument("--import-records", type=int, default=50_000, help="synthetic records to import")
    ap.add_argument("--real", type=Path, help="also import this shadertoys JSON-lines dump (.gz too)")
    ap.add_argument("--sqlite", action="store_true", help="the same on SQLite, for comparison")
    ap.add_argument("--explain", action="store_true", help="print PostgreSQL's plan of each query")
    ap.add_argument("--workdir", type=Path, help="where the cluster and files go (default: a temp folder)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder and the data")
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-postgres-"))
    work.mkdir(parents=True, exist_ok=True)
    os.chmod(work, 0o755)  # the cluster's folder inside must be reachable by the postgres user
    results: dict[str, object] = {
        "machine": f"{os.cpu_count()} cores",
        "programs": args.programs,
        "settings": BENCH_SETTINGS,
    }
    started = time.perf_counter()
    cluster = Cluster(BENCH_SETTINGS, parent=str(work))
    try:
        results["postgresql"] = _server_version(cluster)
        print(f"PostgreSQL {results['postgresql']} in {cluster.root}", flush=True)
        import_benchmarks(work, cluster, args, results)
        catalogues = {"postgresql": _new_pg_catalogue(cluster, "million")}
        if args.sqlite:
            catalogues["sqlite"] = open_catalogue(str(work / "million.db"), create=True)
        for backend, cat in catalogues.items():
            fill_catalogue(cat, args.programs, backend, results)
            query_benchmarks(cat, backend, args.explain, results)
            cat.close()
    finally:
        results["wall_s"] = round(time.perf_counter() - started)
        if args.keep:
            print(f"kept {work}; start the cluster again with: {cluster.bin}/pg_ctl -D {cluster.data} start")
        else:
            cluster.stop()
            if not args.workdir:
                shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results))


def _server_version(cluster: Cluster) -> str:
    import psycopg

    with psycopg.connect(host=cluster.socket_dir, user=cluster.user, dbname="postgres") as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


def _new_pg_catalogue(cluster: Cluster, name: str) -> Catalogue:
    cluster.execute(f'CREATE DATABASE "{name}"')
    return open_catalogue(cluster.url(name), create=True)


def import_benchmarks(work: Path, cluster: Cluster, args: argparse.Namespace, results: dict) -> None:
    synthetic = work / "import.jsonl"
    size = write_jsonl(synthetic, args.import_records, seed=1)
    dumps = {"synthetic": synthetic}
    print(f"import input: {args.import_records} synthetic records, {size / args.import_records:.0f} B each")
    if args.real:
        dumps["real"] = _decompressed(args.real, work)
    for label, dump in dumps.items():
        name = f"import_{label}"
        targets = {"postgresql": lambda name=name: _new_pg_catalogue(cluster, name)}
        if args.sqlite:
            targets["sqlite"] = lambda name=name: open_catalogue(str(work / f"{name}.db"), create=True)
        for backend, new_catalogue in targets.items():
            cat = new_catalogue()
            secs, report = timed(lambda cat=cat, dump=dump: import_path(cat, dump, "shadertoys-jsonl"))
            rate = report.added / secs
            results[f"{backend}_import_{label}_records_per_s"] = round(rate)
            print(
                f"{backend}: import of {report.added:,} {label} records (fresh catalogue):"
                f" {secs:.1f} s = {rate:,.0f} records/s (target >= 2,000)",
                flush=True,
            )
            cat.close()


def _decompressed(path: Path, work: Path) -> Path:
    if path.suffix != ".gz":
        return path
    out = work / path.with_suffix("").name
    with gzip.open(path, "rb") as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    return out


def _records(n: int) -> Iterator[list]:
    flat = (shadertoys_flat_record(r, origin="bench") for r in synthetic_records(n, seed=7))
    while batch := list(itertools.islice(flat, FILL_BATCH)):
        yield batch


def fill_catalogue(cat: Catalogue, n: int, backend: str, results: dict) -> None:
    store = ProgramStore(cat, via="import")
    t = last = time.perf_counter()
    done = 0
    for batch in _records(n):
        with cat.session() as s:
            store.store(batch, s.connection())
        done += len(batch)
        if time.perf_counter() - last > 60 or done == n:
            last = time.perf_counter()
            print(f"{backend}: filled {done:,} programs, {done / (last - t):,.0f}/s", flush=True)
    results[f"{backend}_fill_s"] = round(time.perf_counter() - t)
    secs, _ = timed(lambda: _mark_duplicates(cat))
    results[f"{backend}_mark_duplicates_s"] = round(secs, 1)
    secs, indexed = timed(lambda: refresh_code_index(cat))
    results[f"{backend}_code_index_s"] = round(secs)
    print(f"{backend}: code-search index over {indexed:,} programs in {secs:.0f} s", flush=True)
    if backend == "postgresql":
        secs, _ = timed(lambda: _vacuum_analyze(cat))
        results["postgresql_vacuum_analyze_s"] = round(secs)
        results["postgresql_size"] = _pg_size(cat)
        print(f"postgresql: VACUUM ANALYZE {secs:.0f} s; database {results['postgresql_size']}", flush=True)
    else:
        refresh_statistics(cat)
        results["sqlite_size"] = f"{(Path(cat.url.removeprefix('sqlite:///'))).stat().st_size / 2**30:.1f} GB"


def _mark_duplicates(cat: Catalogue) -> int:
    with cat.session() as s:
        return mark_exact_duplicates(s.connection())


def _vacuum_analyze(cat: Catalogue) -> None:
    with cat.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")


def _pg_size(cat: Catalogue) -> str:
    with cat.engine.connect() as conn:
        return conn.exec_driver_sql("SELECT pg_size_pretty(pg_database_size(current_database()))").scalar()


def query_benchmarks(cat: Catalogue, backend: str, explain: bool, results: dict) -> None:
    queries = dict(TWO_FILTERS) | {f"code {needle!r}": ProgramFilter(code=needle) for needle in NEEDLES}
    for name, flt in queries.items():
        flt.include_excluded = False  # as corpus ls: takedowns hidden
        list(list_programs(cat, flt, limit=100))  # warm-up
        secs, rows = timed(lambda flt=flt: list(list_programs(cat, flt, limit=100)), repeat=5)
        target = 300 if flt.code else 100
        key = f"{backend}_{name if not flt.code else 'code_' + flt.code[:14]}_ms"
        results[key] = round(secs * 1000, 1)
        line = f"{backend}: corpus ls {name}: {len(rows)} rows in {secs * 1000:.1f} ms (target {target} ms)"
        if not flt.code:
            count_secs, total = timed(lambda flt=flt: count_programs(cat, flt))
            results[key.replace("_ms", "_count_ms")] = round(count_secs * 1000, 1)
            line += f"; counting all {total:,}: {count_secs * 1000:.0f} ms"
            # what corpus ls prints under its rows: the count within its budget, or an estimate
            foot_secs, (shown, exact) = timed(
                lambda flt=flt: count_programs_within(cat, flt, LS_COUNT_SECONDS), repeat=5
            )
            results[key.replace("_ms", "_footnote_ms")] = round(foot_secs * 1000, 1)
            results[key.replace("_ms", "_command_ms")] = round((secs + foot_secs) * 1000, 1)
            line += (
                f"; corpus ls's footnote ({'exact' if exact else 'estimated'} {shown:,}) in"
                f" {foot_secs * 1000:.0f} ms: {(secs + foot_secs) * 1000:.0f} ms in all"
            )
        print(line, flush=True)
        if explain and backend == "postgresql":
            _explain(cat, flt)


def _explain(cat: Catalogue, flt: ProgramFilter) -> None:
    """PostgreSQL's plans for each statement of one listing, from its own log of them."""
    from sqlalchemy import event

    statements = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append((statement, parameters))

    event.listen(cat.engine, "before_cursor_execute", keep)
    try:
        list(list_programs(cat, flt, limit=100))
    finally:
        event.remove(cat.engine, "before_cursor_execute", keep)
    with cat.engine.connect() as conn:
        for statement, parameters in statements:
            plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, COSTS OFF) " + statement, parameters).scalars()
            print("    " + "\n    ".join(plan))


if __name__ == "__main__":
    main()
