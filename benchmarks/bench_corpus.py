"""The pipeline's stages on the real corpus, as a user runs them: one table for RESULTS.md.

Stages, each the real command in a subprocess (wall time; peak RSS of its process tree, the
command and its workers together, sampled every 0.2 s with psutil):

1. ``harvest import DUMP`` into a fresh catalogue (the whole dump);
2. ``corpus dedup`` on it (near duplicates; exact ones are found on import);
3. ``render validate --workers 2`` with its defaults on a seeded random slice of the dump
   (``--slice N``, imported into a catalogue of its own: validating the whole corpus takes an
   hour, so this stage is measured on the slice and its full-corpus figure is an estimate);
4. ``render vet``, 5. ``corpus snapshot create --vetted --allow noncommercial``, 6. ``corpus
   snapshot export`` and 7. ``corpus snapshot verify``: on the slice's catalogue, or with
   ``--validated DB`` on a copy of a catalogue where the whole corpus is validated;
8. the stream's first batch: ``pretrain train --steps 1`` on the exported snapshot (32 images at
   64², no loader workers, CPU): start-up, the first programs' compiles and one step; its
   "programs" column counts images.

The estimate for the full corpus is the measured figure where a stage ran on the whole corpus;
validation's is its time scaled by programs (each program is validated on its own, so it grows
linearly); the other stages on the slice are not scaled (a few seconds of start-up dominate
them there): give ``--validated`` for their full-corpus figures.
``MESA_SHADER_CACHE_DISABLE=true`` unless ``--shader-cache``, so every compile is cold.

Usage: ``python benchmarks/bench_corpus.py [--dump PATH] [--slice 400] [--seed 11]
[--validated DB] [--workdir DIR] [--skip-import]``. Prints one Markdown table and a JSON line.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DUMP = ROOT.parent / "shared" / "corpus" / "shadertoys-public.jsonl.gz"
BIN = Path(sys.executable).parent


class _PeakRss(threading.Thread):
    """The largest resident size a process tree reached, summed over its processes."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        import psutil

        self.process = psutil.Process(pid)
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        import psutil

        while not self.done.is_set():
            try:
                tree = [self.process, *self.process.children(recursive=True)]
                total = 0
                for p in tree:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak = max(self.peak, total)
            except psutil.Error:
                return
            self.done.wait(0.2)


def stage(command: list[str], env: dict[str, str]) -> tuple[float, int, dict[str, Any]]:
    """Run one command: (wall seconds, peak RSS bytes, its last JSON line or {})."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    watcher = _PeakRss(proc.pid)
    watcher.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - started
    watcher.done.set()
    watcher.join()
    if proc.returncode != 0:
        raise SystemExit(f"error: {' '.join(command)} exited {proc.returncode}:\n{err[-2000:]}")
    found: dict[str, Any] = {}
    for line in out.splitlines():
        if line.startswith("{"):
            try:
                found = json.loads(line)
            except json.JSONDecodeError:
                pass
    return wall, watcher.peak, found


def count(db: Path, sql: str) -> int:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def write_slice(dump: Path, n: int, seed: int, out: Path) -> int:
    """A seeded random slice of ``n`` records of a JSON-lines dump (gzip or plain)."""
    opener = gzip.open if dump.suffix == ".gz" else open
    with opener(dump, "rt", encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    chosen = sorted(random.Random(seed).sample(range(len(lines)), min(n, len(lines))))
    out.write_text("".join(lines[i] for i in chosen), encoding="utf-8")
    return len(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dump", type=Path, default=DUMP)
    parser.add_argument("--slice", type=int, default=400, help="records validated (seeded random)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--validated", type=Path, help="a catalogue of the whole corpus, validated")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--skip-import", action="store_true", help="only the slice's stages")
    parser.add_argument("--shader-cache", action="store_true", help="leave Mesa's shader cache on")
    args = parser.parse_args()
    if not args.dump.exists():
        raise SystemExit(f"error: no dump at {args.dump}\nhint: give --dump PATH")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-corpus-"))
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if not args.shader_cache:
        env["MESA_SHADER_CACHE_DISABLE"] = "true"
    rows: list[dict[str, Any]] = []
    load_before = os.getloadavg()[0]

    def record(name: str, programs: int, wall: float, rss: int, full: int | None, on: str) -> None:
        """``full``: the programs to scale to; None where the stage ran on the whole corpus, 0
        where it is not scaled."""
        estimate = wall if full is None else (wall * full / max(1, programs) if full else None)
        rows.append(
            {
                "stage": name,
                "on": on,
                "programs": programs,
                "seconds": round(wall, 2),
                "programs_per_second": round(programs / wall, 2) if wall else None,
                "peak_rss_mb": round(rss / 2**20),
                "full_corpus_seconds": None if estimate is None else round(estimate, 1),
            }
        )
        print(f"  {name}: {programs} programs in {wall:.1f} s ({on})", flush=True)

    slice_path = work / "slice.jsonl"
    records = write_slice(args.dump, args.slice, args.seed, slice_path)
    full_db = work / "full.db"
    full_programs = None
    if not args.skip_import:
        for path in full_db.parent.glob(full_db.name + "*"):
            path.unlink()
        wall, rss, _ = stage(
            [str(BIN / "harvest"), "import", str(args.dump), "--db", str(full_db), "--json"], env
        )
        full_programs = count(full_db, "SELECT count(*) FROM program")
        record("import", records, wall, rss, None, f"all {records:,} records")
        wall, rss, _ = stage([str(BIN / "corpus"), "dedup", "--db", str(full_db), "--json"], env)
        record("dedup (near duplicates)", full_programs, wall, rss, None, "whole corpus")

    slice_db = work / "slice.db"
    for path in slice_db.parent.glob(slice_db.name + "*"):
        path.unlink()
    stage([str(BIN / "harvest"), "import", str(slice_path), "--db", str(slice_db), "--json"], env)
    slice_programs = count(slice_db, "SELECT count(*) FROM program")
    full = full_programs or round(slice_programs * records / args.slice)
    command = [
        str(BIN / "render"),
        "validate",
        "--db",
        str(slice_db),
        "--workers",
        str(args.workers),
        "--json",
    ]
    wall, rss, report = stage(command, env)
    validated = int(report.get("programs") or slice_programs)
    record("validate (defaults)", validated, wall, rss, full, f"random {args.slice} (seed {args.seed})")

    if args.validated is not None:
        target, on, scale = work / "validated.db", "whole corpus (validated copy)", None
        shutil.copyfile(args.validated, target)
    else:
        target, on, scale = slice_db, f"random {args.slice} (seed {args.seed})", 0
    wall, rss, report = stage([str(BIN / "render"), "vet", "--db", str(target), "--json"], env)
    record("vet", int(report.get("programs") or 0), wall, rss, scale, on)
    snapshot = f"bench{int(time.time())}"
    create = [str(BIN / "corpus"), "snapshot", "create", snapshot, "--vetted", "--allow", "noncommercial"]
    wall_c, rss_c, _ = stage([*create, "--db", str(target), "--json"], env)
    out = work / "export" / snapshot
    if out.exists():
        shutil.rmtree(out)
    export = [str(BIN / "corpus"), "snapshot", "export", snapshot, str(out), "--db", str(target)]
    wall_e, rss_e, _ = stage([*export, "--json"], env)
    wall_v, rss_v, _ = stage([str(BIN / "corpus"), "snapshot", "verify", str(out), "--json"], env)
    entries = sum(1 for _ in (out / "manifest.jsonl").open())
    record("snapshot create", entries, wall_c, rss_c, scale, on)
    record("snapshot export", entries, wall_e, rss_e, scale, on)
    record("snapshot verify", entries, wall_v, rss_v, scale, on)
    # the stream's first batch: one optimizer step of `pretrain train` (start-up, the loader's
    # first renders and one step), so the time a user waits before training moves
    train = [str(BIN / "pretrain"), "train", "--snapshot", str(out), "--steps", "1", "--size", "64"]
    train += ["--batch-size", "32", "--workers", "0", "--device", "cpu", "--out", str(work / "run")]
    shutil.rmtree(work / "run", ignore_errors=True)
    wall_t, rss_t, _ = stage([*train, "--json"], env)
    record("stream first batch (train 1 step, 32 at 64²)", 32, wall_t, rss_t, scale, on)

    load_after = os.getloadavg()[0]
    print(f"\n{os.cpu_count()} cores, load (1 min) {load_before:.1f} before, {load_after:.1f} after")
    print("| stage | on | programs | wall | programs/s | peak RSS | full corpus (estimate) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        rate = f"{r['programs_per_second']:,.1f}" if r["programs_per_second"] else "-"
        full_min = "-" if r["full_corpus_seconds"] is None else f"{r['full_corpus_seconds'] / 60:,.1f} min"
        print(
            f"| {r['stage']} | {r['on']} | {r['programs']:,} | {r['seconds']:,.1f} s | {rate} | "
            f"{r['peak_rss_mb']} MB | {full_min} |"
        )
    print(json.dumps({"rows": rows, "full_programs": full, "load": [load_before, load_after]}))


if __name__ == "__main__":
    main()
