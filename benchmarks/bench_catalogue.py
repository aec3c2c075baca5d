"""Catalogue benchmarks: import rate, queries, code search, near-dup pass, snapshots, import memory.

Targets (issue "Catalogue foundation"): import >= 2,000 records/s from JSON lines including
licence detection and exact de-duplication; `corpus ls` with two filters on 100k programs
<= 100 ms; FTS code search <= 300 ms; near-duplicate pass over 100k programs <= 60 s; snapshot
create + export of 50k entries <= 30 s; peak RSS of a 1 GB import <= 500 MB.

    .venv/bin/python benchmarks/bench_catalogue.py            # 2 x 50k programs, ~2 KB each
    .venv/bin/python benchmarks/bench_catalogue.py --rss-gb 1 # also the 1 GB import's peak RSS

Prints one line per figure and a final JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.synthetic import write_jsonl  # noqa: E402
from corpus.db import open_catalogue  # noqa: E402
from corpus.near_duplicates import mark_near_duplicates  # noqa: E402
from corpus.queries import ProgramFilter, list_programs, refresh_code_index  # noqa: E402
from corpus.snapshots import create_snapshot, export_snapshot  # noqa: E402
from harvest.importing import import_path  # noqa: E402


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--half", type=int, default=50_000, help="programs per import phase (two phases)")
    ap.add_argument(
        "--rss-gb", type=float, default=0.0, help="also measure peak RSS importing a file of this size"
    )
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--only-rss", action="store_true", help="skip everything but the --rss-gb import")
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-catalogue-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, float | int | str] = {
        "machine": f"{os.cpu_count()} cores",
        "programs_per_phase": args.half,
    }

    if not args.only_rss:
        catalogue_benchmarks(work, args.half, results)
    if args.rss_gb:
        rss_benchmark(work, args.rss_gb, results)
    print(json.dumps(results))


def catalogue_benchmarks(work: Path, half: int, results: dict) -> None:
    first, second = work / "phase1.jsonl", work / "phase2.jsonl"
    size1 = write_jsonl(first, half, seed=1)
    write_jsonl(second, half, seed=2)
    print(f"input: 2 x {half} records, {size1 / half:.0f} B per record on average")
    cat = open_catalogue(str(work / "catalogue.db"), create=True)

    secs, report = timed(lambda: import_path(cat, first, "shadertoys-jsonl"))
    rate = report.added / secs
    results |= {"import_records_per_s": round(rate), "import_seconds": round(secs, 2)}
    print(
        f"import (licences + exact dedup): {report.added} records in {secs:.1f} s"
        f" = {rate:,.0f}/s (target >= 2,000)"
    )

    def snap():
        create_snapshot(
            cat,
            "bench",
            ProgramFilter(include_duplicates=True),
            allow=["noncommercial", "copyleft", "proprietary", "unknown"],
        )
        return export_snapshot(cat, "bench", work / "snapshot")

    secs, _ = timed(snap)
    n_entries = sum(1 for _ in open(work / "snapshot" / "manifest.jsonl"))
    results |= {"snapshot_entries": n_entries, "snapshot_create_export_s": round(secs, 2)}
    print(f"snapshot create + export: {n_entries} entries in {secs:.1f} s (target <= 30 s for 50k)")

    secs, report = timed(lambda: import_path(cat, second, "shadertoys-jsonl"))
    results["import2_records_per_s"] = round(report.added / secs)
    print(f"second import into a 50k catalogue: {report.added / secs:,.0f}/s")

    queries = {
        "ls_licence_and_tag": ProgramFilter(licence_classes=["permissive"], tags=["fractal"]),
        "ls_source_and_author": ProgramFilter(sources=["shadertoy"], authors=["author42"]),
        "ls_text_and_dialect": ProgramFilter(text="neon", dialects=["shadertoy"]),
    }
    for name, flt in queries.items():
        secs, rows = timed(lambda flt=flt: list(list_programs(cat, flt, limit=100)), repeat=5)
        results[f"{name}_ms"] = round(secs * 1000, 1)
        print(f"corpus ls {name}: {len(rows)} rows in {secs * 1000:.1f} ms (target <= 100 ms)")
    secs, n_indexed = timed(lambda: refresh_code_index(cat))
    results |= {"code_index_programs": n_indexed, "code_index_s": round(secs, 1)}
    rate = n_indexed / max(secs, 1e-9)
    print(f"code-search index brought up to date: {n_indexed} programs in {secs:.1f} s ({rate:,.0f}/s)")
    for needle in ("helper3_", "43758.5453", "fragColor = vec4(mix"):
        secs, rows = timed(
            lambda needle=needle: list(list_programs(cat, ProgramFilter(code=needle), limit=100)), repeat=5
        )
        results[f"fts_{needle[:12]}_ms"] = round(secs * 1000, 1)
        print(f"code search {needle!r}: {len(rows)} rows in {secs * 1000:.1f} ms (target <= 300 ms)")

    secs, out = timed(lambda: mark_near_duplicates(cat))
    results |= {
        "near_dup_seconds": round(secs, 1),
        "near_dup_found": out["near_duplicates"],
        "near_dup_programs": out["programs"],
    }
    print(
        f"near-duplicate pass over {out['programs']} programs: {secs:.1f} s,"
        f" {out['near_duplicates']} found (target <= 60 s)"
    )


def rss_benchmark(work: Path, gigabytes: float, results: dict) -> None:
    big = work / "big.jsonl"
    n = int(gigabytes * 1e9 / 2300)
    size = write_jsonl(big, n, seed=3)
    # Sample the child's RSS with psutil: getrusage(RUSAGE_CHILDREN) would also count the pages
    # the child shared with this (large) process between fork and exec.
    import psutil

    t = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "harvest.cli", "import", str(big), "--db", str(work / "big.db"), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    child = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, child.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.2)
    secs = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(proc.stderr.read().decode())
    peak_mb = peak / 2**20
    results |= {
        "big_import_bytes": size,
        "big_import_peak_rss_mb": round(peak_mb),
        "big_import_s": round(secs),
    }
    print(
        f"import of a {size / 1e9:.2f} GB file ({n} records): peak RSS {peak_mb:.0f} MB"
        f" in {secs:.0f} s (target <= 500 MB)"
    )


if __name__ == "__main__":
    main()
