"""``pretrain dataset``: a static rendered dataset, for training elsewhere (as the paper also did).

Two layouts: an ImageFolder tree (one folder per program, ``labels.json`` naming each folder's
program and licence, and ``metadata.jsonl``, one line per image with ``file_name`` and ``label``,
which Hugging Face's ``load_dataset("imagefolder", data_dir=...)`` reads: with a metadata file it
takes labels from there, not from folder names) or WebDataset tar shards (``shard-000000.tar`` with
``KEY.png``, ``KEY.cls`` and ``KEY.json``). Each image is a pure function of (seed, program,
image number), so the output is the same whatever the number of processes. Work is split into
units (a program's folder, or a shard), each written under a temporary name and renamed when
complete: an interrupted run resumes by skipping finished units, and never leaves a half-written
one behind.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from corpus.errors import UsageProblem
from corpus.paths import check_folder, make_folder

FORMATS = ("imagefolder", "webdataset")
SHARD_SIZE = 1000


@dataclass
class DatasetJob:
    snapshot_dir: str
    out: str
    per_program: int = 100
    size: int = 64
    fmt: str = "imagefolder"
    seed: int = 0
    time_min: float = 0.1
    time_max: float = 10.0
    shard_size: int = SHARD_SIZE
    gl_device: str | None = None


_worker: dict[str, Any] = {}


def _init(job: DatasetJob, processes: int) -> None:
    """A worker process's start: its share of the cores, then its renderer."""
    from render.context import share_cores

    # the workers render at once: llvmpipe's threads share the cores
    share_cores(processes, (job.size, job.size))
    _open(job)


def _open(job: DatasetJob) -> None:
    from pretrain.data import StreamConfig, _Renderer
    from pretrain.snapshot import open_snapshot

    snapshot = open_snapshot(job.snapshot_dir, verify=False)  # verified once, in the parent
    config = StreamConfig(size=job.size, cache_programs=8, device=job.gl_device)
    _worker.update(job=job, snapshot=snapshot, renderer=_Renderer(snapshot, config))


def _in_process(job: DatasetJob, units: list[tuple[Callable, tuple]]) -> Iterator[dict[str, Any]]:
    """``--workers 0``: the units rendered one after another in this process."""
    _open(job)
    try:
        for fn, args in units:
            yield fn(*args)
    finally:
        _worker.pop("renderer").close()
        _worker.clear()


def _in_pool(job: DatasetJob, units: list[tuple[Callable, tuple]], workers: int) -> Iterator[dict[str, Any]]:
    """The units rendered by ``workers`` spawned processes, results in unit order."""
    with ProcessPoolExecutor(
        workers, mp_context=get_context("spawn"), initializer=_init, initargs=(job, workers)
    ) as pool:
        futures = [pool.submit(fn, *args) for fn, args in units]
        for future in futures:
            yield future.result()


def _time(job: DatasetJob, program: int, k: int) -> float:
    rng = np.random.default_rng([job.seed, program, k])
    return float(rng.uniform(job.time_min, job.time_max))


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _render(program: int, k: int) -> tuple[bytes, float]:
    job: DatasetJob = _worker["job"]
    image = np.empty((job.size, job.size, 3), np.uint8)
    t = _time(job, program, k)
    _worker["renderer"].render_into(program, t, image)
    return _png(image), t


def folder_name(index: int) -> str:
    return f"{index:06d}"


def _program_unit(program: int) -> dict[str, Any]:
    """Render one program's folder (ImageFolder layout)."""
    from pretrain.data import ProgramFailed

    job: DatasetJob = _worker["job"]
    final = Path(job.out) / folder_name(program)
    if final.is_dir():
        return {"unit": program, "done": "already", "images": sum(1 for _ in final.glob("*.png"))}
    tmp = Path(job.out) / f".{folder_name(program)}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for k in range(job.per_program):
            data, _ = _render(program, k)
            (tmp / f"{k:05d}.png").write_bytes(data)
    except ProgramFailed as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        return {"unit": program, "failed": str(exc)}
    os.replace(tmp, final)
    return {"unit": program, "images": job.per_program}


def _shard_unit(shard: int, samples: list[tuple[int, int]]) -> dict[str, Any]:
    """Write one WebDataset shard of (program, image number) samples."""
    from pretrain.data import ProgramFailed

    job: DatasetJob = _worker["job"]
    snapshot = _worker["snapshot"]
    final = Path(job.out) / f"shard-{shard:06d}.tar"
    if final.exists():
        with tarfile.open(final) as tar:
            held = sum(1 for name in tar.getnames() if name.endswith(".png"))
        return {"unit": shard, "done": "already", "images": held}
    tmp = final.with_suffix(".tar.tmp")
    failed: list[int] = []
    written = 0
    with tarfile.open(tmp, "w") as tar:
        for program, k in samples:
            try:
                data, t = _render(program, k)
            except ProgramFailed:
                failed.append(program)
                continue
            key = f"{program:06d}_{k:05d}"
            meta = {"program": snapshot.entries[program]["program"], "label": program, "time": round(t, 6)}
            for suffix, payload in (
                ("png", data),
                ("cls", str(program).encode()),
                ("json", json.dumps(meta).encode()),
            ):
                info = tarfile.TarInfo(f"{key}.{suffix}")
                info.size = len(payload)
                info.mtime = 0  # reproducible shards
                tar.addfile(info, io.BytesIO(payload))
            written += 1
    os.replace(tmp, final)
    return {"unit": shard, "images": written, "failed_programs": sorted(set(failed))}


def _labels_file(snapshot, out: Path) -> None:
    labels = {
        folder_name(e["index"]): {
            "program": e["program"],
            "licence_spdx": e["licence_spdx"],
            "author": e.get("author"),
            "title": e.get("title"),
        }
        for e in snapshot.entries
    }
    (out / "labels.json").write_text(
        json.dumps(labels, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    for name in ("ATTRIBUTION.md", "LICENCES.md"):
        source = snapshot.root / name
        if source.exists():
            shutil.copyfile(source, out / name)


def _metadata_file(job: DatasetJob, snapshot, out: Path) -> None:
    """metadata.jsonl for the program folders that were rendered (a failed program has none)."""
    tmp = out / ".metadata.jsonl.tmp"
    with tmp.open("w", encoding="utf-8") as fh:
        for entry in snapshot.entries:
            folder = folder_name(entry["index"])
            if not (out / folder).is_dir():
                continue
            for k in range(job.per_program):
                row = {
                    "file_name": f"{folder}/{k:05d}.png",
                    "label": entry["index"],
                    "program": entry["program"],
                    "licence_spdx": entry["licence_spdx"],
                    "time": round(_time(job, entry["index"], k), 6),
                }
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, out / "metadata.jsonl")


#: What a dataset folder's images depend on; the rest (where the snapshot lies, the GL device)
#: may differ between a run and its resumption.
_DEFINING = ("fmt", "per_program", "size", "seed", "time_min", "time_max", "shard_size")


def _defining(job: DatasetJob, manifest_sha256: str) -> dict[str, Any]:
    return {"manifest_sha256": manifest_sha256, **{k: getattr(job, k) for k in _DEFINING}}


def _check_same_dataset(out: Path, wanted: dict[str, Any]) -> None:
    """Refuse to add to a dataset folder made with other options: resuming would keep its images
    and describe them with the new options."""
    try:
        held = json.loads((out / "dataset.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return
    except (OSError, ValueError) as exc:
        raise UsageProblem(f"{out / 'dataset.json'} cannot be read: {exc}", hint="use another --out") from exc
    changed = [k for k in wanted if k in held and held[k] != wanted[k]]
    if changed:
        was = ", ".join(f"{k}={held[k]!r}" for k in changed)
        now = ", ".join(f"{k}={wanted[k]!r}" for k in changed)
        raise UsageProblem(
            f"{out} holds a dataset made with {was}; this run asks for {now}",
            hint="use another --out, or the same options to resume that dataset",
        )


def build_dataset(
    job: DatasetJob,
    *,
    workers: int | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Render the dataset; returns counts. ``workers``: None, one process per core; 0, in this
    process; N, N processes (each with its own GL context)."""
    from pretrain.snapshot import open_snapshot

    if job.fmt not in FORMATS:
        raise UsageProblem(f"unknown format {job.fmt!r}", hint=f"use one of: {', '.join(FORMATS)}")
    from pretrain.config import max_workers

    most = max_workers()
    if workers is None:
        workers = len(os.sched_getaffinity(0))
    if job.per_program < 1 or job.size < 8 or not 0 <= workers <= most:
        raise UsageProblem(
            f"--per-program must be >= 1, --size >= 8 and --workers between 0 (in this process) and {most}"
        )
    snapshot = open_snapshot(job.snapshot_dir)
    job.snapshot_dir = str(snapshot.root)
    out = Path(job.out)
    check_folder(out)
    wanted = _defining(job, snapshot.manifest_sha256)
    _check_same_dataset(out, wanted)
    make_folder(out)
    # written first, so an interrupted run is resumed only with the options it was started with
    (out / "dataset.json").write_text(json.dumps({"snapshot": snapshot.name, **wanted}, indent=1) + "\n")
    _labels_file(snapshot, out)
    n = len(snapshot)
    summary: dict[str, Any] = {
        "format": job.fmt,
        "programs": n,
        "images": 0,  # in the dataset, resumed parts included
        "images_this_run": 0,
        "skipped_units": 0,
        "failed": {},
    }
    if job.fmt == "imagefolder":
        units: list[tuple[Callable, tuple]] = [(_program_unit, (i,)) for i in range(n)]
    else:
        samples = [(i, k) for i in range(n) for k in range(job.per_program)]
        order = np.random.default_rng(job.seed).permutation(len(samples))
        starts = range(0, len(samples), job.shard_size)
        shards = [[samples[j] for j in order[s : s + job.shard_size]] for s in starts]
        units = [(_shard_unit, (s, shard)) for s, shard in enumerate(shards)]
    results = _in_process(job, units) if workers == 0 else _in_pool(job, units, min(workers, len(units)))
    for result in results:
        if result.get("done") == "already":
            summary["skipped_units"] += 1
        else:
            summary["images_this_run"] += result.get("images", 0)
        summary["images"] += result.get("images", 0)
        if result.get("failed"):
            summary["failed"][snapshot.entries[result["unit"]]["program"]] = result["failed"]
        for program in result.get("failed_programs", []):
            summary["failed"][snapshot.entries[program]["program"]] = "did not render"
        if progress is not None:
            progress(result)
    summary["units"] = len(units)
    if job.fmt == "imagefolder":
        _metadata_file(job, snapshot, out)
    (out / "dataset.json").write_text(
        json.dumps(
            {
                "snapshot": snapshot.name,
                "manifest_sha256": snapshot.manifest_sha256,
                **job.__dict__,
                "summary": summary,
            },
            indent=1,
        )
        + "\n"
    )
    return summary
