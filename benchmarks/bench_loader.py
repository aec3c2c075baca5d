"""Benchmark: images/s of the pretraining loader (``pretrain.data``) against bare rendering and
against the reference implementation's on-the-fly data path (issue 5, "Speed").

Input: a snapshot of the bundled examples (``examples/``), built in a temporary folder the way a
user builds one: imported, validated at 64², vetted with ``Policy(size=64)``, frozen with every
licence class allowed and exported (``--snapshot DIR`` reuses an exported folder instead).

Every side renders the same samples: stream ``seed`` 0, batches of 64, sample ``i`` drawn as the
stream documents it (``Philox(key=0, counter=[0, i, 0, 0])``, checked against the loader's labels),
the first ``--warmup`` batches untimed (programs compile lazily in a loader worker; a bare process
compiles them all first), the next ``--batches`` timed. A sample is the frames the stream draws
for it: one, or four after a reset for programs with feedback or several passes.

The machine is shared, so each measurement is repeated ``--repeats`` times, the two sides back to
back in alternating order: a ratio is the median over repeats of the pair's ratio (of wall time,
and of CPU time per image, which other processes disturb less); images/s are the best run. CPU
time counts every thread (llvmpipe's rasterizers, the DataLoader's pickling): for a loader worker
from the end of its previous batch to the end of this one, for the consumer its own thread over
the timed batches.

1. Loader: ``make_loader(ShaderStream(...), workers)`` at 64² and 128² with 0, 1 and 2 workers,
   iterated as fast as it yields (nothing done with the batch). Bare: one process per loader
   worker (one for 0 workers), each with its own ``Engine``, every program precompiled, a loop of
   ``render`` + ``read_into`` into one preallocated (64, h, w, 3) array per batch, the batches split
   between processes as the loader splits them between workers; timed from a common start to
   the last process's end. Every rendering process with workers, on either side, sets
   llvmpipe's threads as a loader worker does (``render.context.share_cores``); with 0 workers
   both sides keep llvmpipe's default; ``--lp-num-threads`` sets one count for all.
   Overhead = loader time per image / bare time per image - 1, so with 0 workers the loader in
   this process is compared with one bare process, with N workers the loader's N processes (and
   its consumer) with N bare processes.
2. Reference data path (64²): one spawned process per worker renders each sample with the very
   renderer the stream uses (so only the data path differs), makes a PIL image of it and puts it
   on a ``multiprocessing.Queue``; the consumer turns each into a float CHW tensor / 255 as
   torchvision's ``ToTensor`` does and stacks 64 of them, as ``default_collate`` does. Ours, for
   this comparison, does what training does with a batch: ``permute(0, 3, 1, 2).float().div_(255)``.
   The consumer runs torch on one thread for both: the reference's per-image tensors are too small
   for torch to split anyway, and ours' whole-batch conversion on two threads leaves OpenMP's
   threads spinning after each one, on the cores the two workers need (ours at ~60 % of its
   images/s on this 2-core machine).
3. Time to the first batch: from ``iter(loader)`` to the first batch, spawning the workers
   (import of torch and this module, one GL context each, lazy compiles) included.
4. ResNet-18 at 64²: one forward + backward + SGD step on a batch of 64 (a linear head over the
   snapshot's classes, cross-entropy), torch's default threads, against the loader's time per batch.
5. Peak RSS of each loader worker (psutil, sampled every 50 ms from its first batch on).

``MESA_SHADER_CACHE_DISABLE`` is left alone: warm shader caches are what a training run sees.

Usage: ``python benchmarks/bench_loader.py [--sizes 64,128] [--workers 0,1,2] [--batches 40]
[--warmup 12] [--repeats 5] [--snapshot DIR] [--lp-num-threads N]``. Prints plain lines and a final JSON line.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pretrain.data import (  # noqa: E402
    ShaderStream,
    StreamConfig,
    _Renderer,
    draw_sample,
    has_history,
)
from pretrain.loader import make_loader  # noqa: E402
from pretrain.snapshot import SnapshotData, open_snapshot  # noqa: E402

# Here and in every spawned worker (they import this module): if one aborts, the Python stack of
# each of its threads goes to stderr (a loader worker aborted twice in ~70 runs, in glibc's free()).
faulthandler.enable()

EXAMPLES = ROOT / "examples"
EXAMPLE_PATHS = ("shaders21k", "shadertoys.jsonl", "glslsandbox.jsonl", "gl-transitions.json", "repo")
BATCH = 64
SEED = 0
MAX_OVERHEAD = 0.20  # loader time per image over bare's
MIN_SPEEDUP = 1.5  # ours over the reference data path, images/s


def load() -> float:
    return round(os.getloadavg()[0], 2)


def build_snapshot(folder: Path) -> Path:
    """Import, validate (64²), vet (``Policy(size=64)``), freeze and export the bundled examples."""
    from corpus.db import open_catalogue
    from corpus.filters import ProgramFilter
    from corpus.snapshots import create_snapshot, export_snapshot
    from harvest.importing import import_path
    from render.validate import ValidateOptions, validate
    from render.vetting import Policy, vet

    catalogue = open_catalogue(str(folder / "c.db"), create=True)
    for name in EXAMPLE_PATHS:
        import_path(catalogue, EXAMPLES / name)
    options = ValidateOptions(workers=2, sizes=((64, 64),), compile_deadline=10.0, frame_deadline=5.0)
    report = validate(catalogue, options=options)
    policy = Policy(size=64)
    vet(catalogue, policy, report.renderer)
    flt = ProgramFilter(vetted=True, include_duplicates=False, renderer=report.renderer)
    classes = ("noncommercial", "unknown", "copyleft", "proprietary")
    create_snapshot(catalogue, "loader-bench", flt, allow=classes, policy_hash=policy.hash)
    out = export_snapshot(catalogue, "loader-bench", folder / "loader-bench")
    catalogue.close()
    return out


def samples(n_programs: int, config: StreamConfig, batches: range) -> list[list[tuple[int, float]]]:
    """(label, time) of every sample of ``batches``, drawn as ``ShaderStream`` documents it (without
    weights, MixUp or DDP), from a generator built anew per sample: checked against the labels the
    loader returns, this also checks the stream's cheaper way of reaching each sample's block."""
    out = []
    for b in batches:
        batch = []
        for j in range(config.batch_size):
            counter = [0, b * config.batch_size + j, 0, 0]
            rng = np.random.Generator(np.random.Philox(key=config.seed, counter=counter))
            label = int(rng.integers(n_programs))
            batch.append((label, float(rng.uniform(config.time_min, config.time_max))))
        out.append(batch)
    return out


# --- bare rendering: one spawned process per loader worker ------------------------------------


def _bare_render(
    compiled: list, history: list[bool], batch: list[tuple[int, float]], out: np.ndarray
) -> None:
    """The frames the stream draws for each sample of ``batch``, read into ``out[j]``."""
    for j, (label, t) in enumerate(batch):
        draw_sample(compiled[label], t, out[j], history[label])


def _bare_process(folder: str, threads: tuple | None, commands, results, barrier) -> None:
    from render.context import share_cores
    from render.engine import Engine

    if threads is not None:  # (processes, frame): llvmpipe's threads as a loader worker sets them
        share_cores(*threads)

    snapshot = open_snapshot(folder, verify=False)
    engine = Engine()
    compiled = [engine.compile(snapshot.program(i), float_picture=False) for i in range(len(snapshot))]
    history = [has_history(c) for c in compiled]
    while True:
        command = commands.get()
        if command is None:
            break
        size, warm, timed = command
        out = np.empty((BATCH, size, size, 3), np.uint8)  # one array, reused for every batch
        for c in compiled:  # llvmpipe compiles to machine code at a program's first draw per size
            c.render(1.0, (size, size))
            c.read_into(out[0])
        for batch in warm:
            _bare_render(compiled, history, batch, out)
        barrier.wait()
        started, cpu = time.perf_counter(), time.process_time()
        for batch in timed:
            _bare_render(compiled, history, batch, out)
        results.put((started, time.perf_counter(), time.process_time() - cpu))
    for c in compiled:
        c.release()
    engine.release()


class BarePool:
    """``n`` processes rendering with the bare API; :meth:`seconds` times one pass over batches.
    ``size``: the frame size each process sets llvmpipe's threads for, as loader workers do (None
    for the loader without workers, which leaves them alone)."""

    def __init__(self, folder: Path, n: int, size: int | None) -> None:
        ctx = mp.get_context("spawn")
        self.n = n
        self.barrier = ctx.Barrier(n + 1)
        self.results = ctx.Queue()
        self.commands = [ctx.Queue() for _ in range(n)]
        threads = None if size is None else (n, (size, size))
        self.processes = [
            ctx.Process(
                target=_bare_process, args=(str(folder), threads, q, self.results, self.barrier), daemon=True
            )
            for q in self.commands
        ]
        for p in self.processes:
            p.start()

    def seconds(self, size: int, warm: list, timed: list) -> tuple[float, float]:
        """Wall seconds from the common start to the last end, and CPU seconds of all processes."""
        # process w takes batches b ≡ w (mod n), as DataLoader worker w does
        for w, q in enumerate(self.commands):
            q.put((size, warm[w :: self.n], timed[w :: self.n]))
        self.barrier.wait(timeout=600)
        spans = [self.results.get(timeout=600) for _ in range(self.n)]
        wall = max(end for _, end, _ in spans) - min(start for start, _, _ in spans)
        return wall, sum(cpu for _, _, cpu in spans)

    def close(self) -> None:
        for q in self.commands:
            q.put(None)
        for p in self.processes:
            p.join(timeout=30)


# --- the loader -----------------------------------------------------------------------------------


class RssSampler:
    """Peak RSS of the processes it watches, sampled every 50 ms in a thread."""

    def __init__(self) -> None:
        self.watched: list[psutil.Process] = []
        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            for process in self.watched:
                try:
                    rss = process.memory_info().rss
                except psutil.Error:
                    continue
                self.peaks[process.pid] = max(self.peaks.get(process.pid, 0), rss)

    def watch(self, exclude: set[int]) -> None:
        """Watch this process's spawned children but ``exclude`` (not multiprocessing's tracker)."""
        watched = []
        for child in psutil.Process().children():
            try:
                if child.pid not in exclude and "spawn_main" in " ".join(child.cmdline()):
                    watched.append(child)
            except psutil.Error:
                continue
        self.watched = watched

    def take(self) -> list[int]:
        """Peaks since the last call; stops watching."""
        self.watched = []
        peaks, self.peaks = self.peaks, {}
        return sorted(peaks.values())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class TimedStream(ShaderStream):
    """The stream, each batch carrying its worker's CPU seconds so far (all threads: llvmpipe's
    rasterizers and the DataLoader's pickling of earlier batches too)."""

    def batch(self, renderer, b: int, into=None) -> dict[str, Any]:
        out = super().batch(renderer, b, into)
        out["cpu_s"] = time.process_time()
        return out


def loader_run(
    snapshot: SnapshotData,
    size: int,
    workers: int,
    warm: int,
    timed: list,
    sampler: RssSampler,
    exclude: set[int],
    convert: bool = False,
) -> dict[str, Any]:
    """One loader from start to end: time to the first batch; wall and CPU seconds of the timed
    batches (CPU: the workers' for producing them, the consumer's for receiving them)."""
    config = StreamConfig(size=size, batch_size=BATCH, seed=SEED)
    stream = TimedStream(snapshot, config, max_batches=warm + len(timed))
    cpu_at: dict[int, float] = {}  # batch → its worker's CPU seconds when it was done
    started = time.perf_counter()
    iterator = iter(make_loader(stream, workers))
    first = next(iterator)
    first_s = time.perf_counter() - started
    if workers:
        sampler.watch(exclude)
    cpu_at[0] = first["cpu_s"]
    for _ in range(warm - 1):
        batch = next(iterator)
        cpu_at[batch["batch"]] = batch["cpu_s"]
    timed_started = time.perf_counter()
    # with workers, the consumer's own thread: the RSS sampler's thread shares the process
    clock = time.process_time if workers == 0 else time.thread_time
    consumer_cpu = clock()
    for expected in timed:
        batch = next(iterator)
        cpu_at[batch["batch"]] = batch["cpu_s"]
        if convert:  # what the training step does with a batch
            batch["images"].permute(0, 3, 1, 2).float().div_(255.0)
        labels = [label for label, _ in expected]
        if batch["skipped"] or batch["labels"].tolist() != labels:
            raise RuntimeError(f"batch {batch['batch']} is not the samples the bare side rendered")
    seconds = time.perf_counter() - timed_started
    consumer_cpu = clock() - consumer_cpu
    del first, batch, iterator  # shuts the workers down
    if workers == 0:
        cpu = consumer_cpu  # everything happened in this process
    else:  # worker w made batches b ≡ w (mod workers): CPU from its previous batch to this one
        cpu = consumer_cpu + sum(cpu_at[b] - cpu_at[b - workers] for b in range(warm, warm + len(timed)))
    return {"first_batch_s": first_s, "seconds": seconds, "cpu_s": cpu}


# --- the reference implementation's data path -----------------------------------------------------


def _reference_process(folder: str, size: int, worker: int, workers: int, count: int, queue) -> None:
    from PIL import Image

    from render.context import share_cores

    # the same renderer, set up as in a loader worker: only the data path differs
    share_cores(workers, (size, size))
    snapshot = open_snapshot(folder, verify=False)
    config = StreamConfig(size=size, batch_size=BATCH, seed=SEED)
    stream = ShaderStream(snapshot, config)
    renderer = _Renderer(snapshot, config)
    out = np.empty((size, size, 3), np.uint8)
    scratch = np.empty_like(out)
    for i in range(worker, count, workers):
        label, _, _, _ = stream._sample(renderer, i, out, scratch)  # the stream's own rendering
        queue.put((Image.fromarray(out.copy()), label, worker, time.process_time()))
    renderer.close()


def to_tensor(picture) -> torch.Tensor:
    """torchvision's ``ToTensor`` for an 8-bit RGB PIL image: float CHW in [0, 1]."""
    image = torch.from_numpy(np.array(picture, np.uint8, copy=True))
    image = image.view(picture.size[1], picture.size[0], 3).permute(2, 0, 1).contiguous()
    return image.to(dtype=torch.get_default_dtype()).div(255)


def reference_run(folder: Path, size: int, workers: int, warm: int, timed: int) -> dict[str, float]:
    """Wall and CPU seconds for ``timed`` batches after ``warm`` batches through the reference path
    (CPU: the workers' from their last warm-up image to their last timed one, and the consumer's)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue(maxsize=4 * BATCH * workers)
    count = (warm + timed) * BATCH
    processes = [
        ctx.Process(
            target=_reference_process, args=(str(folder), size, w, workers, count, queue), daemon=True
        )
        for w in range(workers)
    ]
    for p in processes:
        p.start()
    cpu_at = [0.0] * workers

    def batch() -> dict[str, torch.Tensor]:
        items = [queue.get(timeout=600) for _ in range(BATCH)]
        for _, _, worker, cpu in items:
            cpu_at[worker] = max(cpu_at[worker], cpu)
        return {
            "images": torch.stack([to_tensor(picture) for picture, _, _, _ in items]),
            "labels": torch.tensor([label for _, label, _, _ in items]),
        }

    for _ in range(warm):
        batch()
    started, consumer_cpu, workers_cpu = time.perf_counter(), time.thread_time(), sum(cpu_at)
    for _ in range(timed):
        batch()
    seconds = time.perf_counter() - started
    cpu = time.thread_time() - consumer_cpu + sum(cpu_at) - workers_cpu
    for p in processes:
        p.join(timeout=60)
    return {"seconds": seconds, "cpu_s": cpu}


# --- the model ------------------------------------------------------------------------------------


def model_step_seconds(classes: int, size: int, steps: int) -> float:
    """Median seconds of one ResNet-18 forward + backward + SGD step on a batch of 64."""
    from pretrain.models import build_backbone

    backbone, dim = build_backbone("resnet18")
    model = torch.nn.Sequential(backbone, torch.nn.Linear(dim, classes))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = torch.rand(BATCH, 3, size, size)
    labels = torch.randint(0, classes, (BATCH,))
    times = []
    for i in range(steps + 2):  # two untimed: allocator and kernel selection
        started = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if i >= 2:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


# --------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="64,128")
    parser.add_argument("--workers", default="0,1,2")
    parser.add_argument("--batches", type=int, default=40, help="timed batches of 64")
    parser.add_argument("--warmup", type=int, default=12, help="untimed batches before them")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reference-workers", default="1,2")
    parser.add_argument("--model-steps", type=int, default=5)
    parser.add_argument("--snapshot", type=Path, help="an exported snapshot folder to use instead")
    parser.add_argument(
        "--lp-num-threads",
        help="LP_NUM_THREADS for every GL context of the run, both sides (llvmpipe's rasterizer "
        "threads); default: as the loader's workers set it",
    )
    args = parser.parse_args()
    if args.lp_num_threads is not None:  # before any context exists; spawned processes inherit it
        os.environ["LP_NUM_THREADS"] = args.lp_num_threads
    sizes = [int(s) for s in args.sizes.split(",")]
    worker_counts = [int(w) for w in args.workers.split(",")]
    reference_workers = [int(w) for w in args.reference_workers.split(",") if w]

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.snapshot
        if folder is None:
            started = time.perf_counter()
            folder = build_snapshot(Path(tmp))
            print(f"snapshot of the examples built in {time.perf_counter() - started:.1f} s")
        snapshot = open_snapshot(folder)
        figures = run(snapshot, folder, sizes, worker_counts, reference_workers, args)
    print(json.dumps(figures))


def run(
    snapshot: SnapshotData,
    folder: Path,
    sizes: list[int],
    worker_counts: list[int],
    reference_workers: list[int],
    args: argparse.Namespace,
) -> dict[str, Any]:
    config = StreamConfig(batch_size=BATCH, seed=SEED)
    warm = samples(len(snapshot), config, range(args.warmup))
    timed = samples(len(snapshot), config, range(args.warmup, args.warmup + args.batches))
    n_images = args.batches * BATCH
    history = sum(1 for e in snapshot.entries if len(e["passes"]) > 1)
    print(
        f"snapshot {snapshot.name}: {len(snapshot)} programs ({history} with several passes); "
        f"{args.warmup} warm-up + {args.batches} timed batches of {BATCH}, best of {args.repeats}"
    )
    figures: dict[str, Any] = {
        "programs": len(snapshot),
        "batch_size": BATCH,
        "timed_batches": args.batches,
        "warmup_batches": args.warmup,
        "repeats": args.repeats,
        "loader": {},
        "reference": {},
    }
    sampler = RssSampler()
    per_batch: dict[tuple[int, int], float] = {}
    crashes: list[str] = []

    def paired(ours: list[float | None], theirs: list[float]) -> float:
        """Median over repeats of ours / theirs, each pair measured back to back."""
        return statistics.median(a / b for a, b in zip(ours, theirs, strict=True) if a is not None)

    print(
        "overhead: median over repeats of loader / bare (wall time; CPU time per image), each pair"
        " back to back; img/s: best run of each side"
    )
    print(
        f"{'size':>5} {'workers':>7} {'loader img/s':>12} {'bare img/s':>11} {'overhead':>9}"
        f" {'CPU ms/img loader':>17} {'bare':>5} {'overhead':>9} {'load':>5}"
    )
    for size in sizes:
        for workers in worker_counts:
            pool = BarePool(folder, max(1, workers), size if workers else None)
            pool_pids = {p.pid for p in pool.processes}
            bare: list[tuple[float, float]] = []
            loader: list[dict[str, float] | None] = []
            loads, rss = [], []
            for r in range(args.repeats):
                loads.append(load())
                if r % 2 == 0:
                    bare.append(pool.seconds(size, warm, timed))
                try:
                    loader.append(loader_run(snapshot, size, workers, args.warmup, timed, sampler, pool_pids))
                except RuntimeError as exc:  # a worker died: say so, keep the other repeats
                    crashes.append(f"{size}x{size}/workers={workers}: {exc}")
                    print(f"  loader run failed: {exc}")
                    loader.append(None)
                rss.extend(sampler.take())
                if r % 2 == 1:
                    bare.append(pool.seconds(size, warm, timed))
            ran = [x for x in loader if x is not None]
            overhead = paired([x and x["seconds"] for x in loader], [wall for wall, _ in bare]) - 1
            cpu_overhead = paired([x and x["cpu_s"] for x in loader], [cpu for _, cpu in bare]) - 1
            loader_s, bare_s = min(x["seconds"] for x in ran), min(wall for wall, _ in bare)
            loader_ms = statistics.median(x["cpu_s"] for x in ran) / n_images * 1000
            bare_ms = statistics.median(cpu for _, cpu in bare) / n_images * 1000
            per_batch[(size, workers)] = loader_s / args.batches
            first_s = [x["first_batch_s"] for x in ran]
            entry = {
                "loader_images_per_second": round(n_images / loader_s, 1),
                "bare_images_per_second": round(n_images / bare_s, 1),
                "bare_processes": pool.n,
                "overhead": round(overhead, 3),
                "loader_cpu_ms_per_image": round(loader_ms, 3),
                "bare_cpu_ms_per_image": round(bare_ms, 3),
                "cpu_overhead": round(cpu_overhead, 3),
                "within_target": overhead <= MAX_OVERHEAD,
                "loader_images_per_second_runs": [round(n_images / x["seconds"], 1) for x in ran],
                "bare_images_per_second_runs": [round(n_images / wall, 1) for wall, _ in bare],
                "first_batch_s": round(statistics.median(first_s), 2),
                "first_batch_s_runs": [round(x, 2) for x in first_s],
                "worker_peak_rss_mb": round(max(rss) / 2**20, 1) if rss else None,
                "load_1min": loads,
            }
            figures["loader"][f"{size}x{size}/workers={workers}"] = entry
            print(
                f"{size:>5} {workers:>7} {n_images / loader_s:>12.1f} {n_images / bare_s:>11.1f}"
                f" {overhead:>+9.1%} {loader_ms:>17.3f} {bare_ms:>5.3f} {cpu_overhead:>+9.1%}"
                f" {max(loads):>5.2f}"
                f"   first batch {entry['first_batch_s']:.2f} s"
                + (f", worker peak RSS {entry['worker_peak_rss_mb']:.0f} MB" if rss else "")
            )
            pool.close()

    size = 64
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    for workers in reference_workers:
        ours: list[dict[str, float] | None] = []
        reference: list[dict[str, float]] = []
        loads = []
        for r in range(args.repeats):
            loads.append(load())
            if r % 2 == 0:
                reference.append(reference_run(folder, size, workers, args.warmup, args.batches))
            try:
                ours.append(
                    loader_run(snapshot, size, workers, args.warmup, timed, sampler, set(), convert=True)
                )
            except RuntimeError as exc:
                crashes.append(f"reference comparison, workers={workers}: {exc}")
                print(f"  loader run failed: {exc}")
                ours.append(None)
            if r % 2 == 1:
                reference.append(reference_run(folder, size, workers, args.warmup, args.batches))
        sampler.take()
        ran = [x for x in ours if x is not None]
        speedup = 1 / paired([x and x["seconds"] for x in ours], [x["seconds"] for x in reference])
        cpu_ratio = 1 / paired([x and x["cpu_s"] for x in ours], [x["cpu_s"] for x in reference])
        ours_ips = n_images / min(x["seconds"] for x in ran)
        reference_ips = n_images / min(x["seconds"] for x in reference)
        ours_ms = statistics.median(x["cpu_s"] for x in ran) / n_images * 1000
        reference_ms = statistics.median(x["cpu_s"] for x in reference) / n_images * 1000
        entry = {
            "ours_images_per_second": round(ours_ips, 1),
            "reference_images_per_second": round(reference_ips, 1),
            "speedup": round(speedup, 2),
            "ours_cpu_ms_per_image": round(ours_ms, 3),
            "reference_cpu_ms_per_image": round(reference_ms, 3),
            "cpu_ratio": round(cpu_ratio, 2),
            "within_target": speedup >= MIN_SPEEDUP,
            "ours_runs": [round(n_images / x["seconds"], 1) for x in ran],
            "reference_runs": [round(n_images / x["seconds"], 1) for x in reference],
            "load_1min": loads,
        }
        figures["reference"][f"{size}x{size}/workers={workers}"] = entry
        print(
            f"reference data path, {size}², {workers} worker(s): ours {ours_ips:.1f} img/s (float CHW), "
            f"reference {reference_ips:.1f} img/s (best runs); ours/reference {speedup:.2f}x (median of"
            f" pairs); CPU per image {ours_ms:.3f} vs {reference_ms:.3f} ms, {cpu_ratio:.2f}x"
            f" (load {max(loads):.2f})"
        )
    sampler.stop()
    torch.set_num_threads(threads)

    step_load = load()
    step_s = model_step_seconds(len(snapshot), 64, args.model_steps)
    figures["resnet18_64"] = {
        "step_s": round(step_s, 3),
        "torch_threads": torch.get_num_threads(),
        "load_1min": step_load,
        "loader_batch_s": {
            f"workers={w}": round(per_batch[(64, w)], 4) for w in worker_counts if (64, w) in per_batch
        },
    }
    slowest = max(figures["resnet18_64"]["loader_batch_s"].values(), default=float("nan"))
    print(
        f"ResNet-18 at 64², batch {BATCH}: forward + backward + step {step_s * 1000:.0f} ms "
        f"({torch.get_num_threads()} threads, load {step_load}); loader per batch "
        + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in figures["resnet18_64"]["loader_batch_s"].items())
        + f": the {'model' if step_s > slowest else 'renderer'} is the bottleneck"
    )
    figures["loader_runs_failed"] = crashes
    figures["machine"] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "mesa_shader_cache_disabled": os.environ.get("MESA_SHADER_CACHE_DISABLE"),
        "lp_num_threads": os.environ.get("LP_NUM_THREADS"),
    }
    return figures


if __name__ == "__main__":
    main()
