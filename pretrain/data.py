"""Images rendered on the fly from a snapshot: a torch ``IterableDataset`` of whole batches.

Why whole batches: the GL context writes each frame straight into the batch's uint8 tensor
(``read_into``), with no per-image object, and one DataLoader worker owns a batch, so the
stream's order is fixed by arithmetic, not by worker timing. With workers, that tensor is a slot
of a shared-memory ring the training process copies batches out of (:class:`_Ring`).

Determinism: sample ``i`` of the global stream draws everything (program, time, MixUp partners
and weights) from ``Generator(Philox(key=seed, counter=[0, i, 0, 0]))``: a counter-based
generator, so each sample starts at its own block of one stream and never reaches the next
sample's (a draw advances the first counter word). Samples come in groups of
``samples_per_program`` (m) consecutive indices that share one program (or, with MixUp, one set of
K programs): the one the group's first sample ``i - i % m`` draws; every sample still draws its
own time (and MixUp weights) from its own generator, the same it would draw with m = 1. Rank ``r``
of ``W`` takes whole groups ``g * W + r``, so its rank-local sample ``j`` is global sample
``((j // m) * W + r) * m + j % m`` (``j * W + r`` for m = 1); its batch ``b`` holds rank-local
samples ``b*B … b*B+B-1``; DataLoader worker ``w`` of ``N`` makes batches ``b ≡ w (mod N)``, which
is the order the DataLoader returns them in. So every rank and worker split sees the same samples,
and a run resumed at step ``s`` starts at batch ``s`` and sees exactly what it would have seen.

Each worker owns one headless GL context (created in the worker, never forked), compiles
programs lazily and keeps a bounded LRU cache of compiled ones: compiling every program up front
costs ~70 ms each on llvmpipe (25 minutes for 21k programs). A program that fails here (it stops
compiling on this driver, or draws nothing) is skipped, counted, and replaced by another draw.

Why groups: on llvmpipe a program's first draw compiles it to machine code (LLVM), a median of
~0.2 s and seconds for some (measured on the real corpus, a cold Mesa shader cache), while a 64²
frame takes ~1-5 ms. With a snapshot of many more programs than a worker's cache holds (20,000
against 64), nearly every sample meets a program its worker has not compiled: a batch of 64 would
spend most of its time compiling. With m samples a program, a batch compiles B/m programs. What it
does to the methods: supervised and SupCon read the labels (same-program images are one class, or
positives); MoCo v2's negatives are the queue of earlier batches' keys, where a program of this
batch almost never is with thousands of programs; SimCLR would take a group's other images as
negatives, so with m > 1 it leaves same-program images out of its negatives (pretrain.methods).
With a snapshot the cache holds whole, every program is compiled once per worker and m = 1 costs
nothing: that is the default there (pretrain.config.samples_per_program_for).
"""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from corpus.errors import UsageProblem
from pretrain.snapshot import SnapshotData

#: Frames rendered (ending at the sampled time) for programs with feedback, after a reset.
FEEDBACK_FRAMES = 4
#: Draws before a sample gives up on finding a program that renders.
MAX_REDRAWS = 16


@dataclass
class StreamConfig:
    size: int = 64
    batch_size: int = 64
    seed: int = 0
    time_min: float = 0.1
    time_max: float = 10.0
    mixup_k: int = 0  # 0 or 1: no MixUp; K >= 2: blend K programs with Dirichlet(alpha) weights
    mixup_alpha: float = 1.0
    cache_programs: int = 64  # compiled programs each worker keeps
    samples_per_program: int = 1  # m: consecutive samples that share a program (module docstring)
    device: str | None = None  # GL device: auto, cpu, gpu, or an EGL index


class ProgramFailed(Exception):
    pass


#: A sample's draw: its programs, their times, and its MixUp weights (None without MixUp).
_Draw = tuple[list[int], list[float], "np.ndarray | None"]


def has_history(compiled) -> bool:
    """Whether a compiled program's picture depends on earlier frames (feedback or buffers)."""
    return bool(compiled.plan.feedback_targets() or len(compiled.plan.passes) > 1)


def draw_sample(compiled, t: float, out: np.ndarray, history: bool) -> None:
    """The frames a sample at time ``t`` draws, the last read into ``out`` (h, w, 3) uint8.

    A program with ``history`` starts from nothing (a reset) and draws :data:`FEEDBACK_FRAMES`
    frames 1/60 s apart ending at ``t``, so its picture depends only on (program, t)."""
    size = (out.shape[1], out.shape[0])
    if history:
        compiled.reset()
        for k in range(FEEDBACK_FRAMES - 1, -1, -1):
            tk = max(0.0, t - k / 60.0)
            compiled.render(tk, size, frame=max(0, int(tk * 60)))
    else:
        compiled.render(t, size, frame=int(t * 60))
    compiled.read_into(out)


class _Renderer:
    """A worker's GL engine and its LRU cache of compiled programs."""

    def __init__(self, snapshot: SnapshotData, config: StreamConfig) -> None:
        from render.engine import Engine

        self.snapshot = snapshot
        self.config = config
        self.engine = Engine(device=config.device)
        self.cache: OrderedDict[int, Any] = OrderedDict()
        self.failed: dict[int, str] = {}
        self.compiles = 0  # compile attempts, failed ones included: each costs a compile

    def compiled(self, index: int):
        from render.engine import ShaderError, UnsupportedProgram

        if index in self.failed:
            raise ProgramFailed(self.failed[index])
        hit = self.cache.get(index)
        if hit is not None:
            self.cache.move_to_end(index)
            return hit
        self.compiles += 1
        try:
            compiled = self.engine.compile(self.snapshot.program(index), float_picture=False)
        except (ShaderError, UnsupportedProgram, OSError) as exc:
            self.failed[index] = f"{type(exc).__name__}: {exc}"[:300]
            raise ProgramFailed(self.failed[index]) from None
        self.cache[index] = compiled
        while len(self.cache) > self.config.cache_programs:
            _, old = self.cache.popitem(last=False)
            old.release()
        return compiled

    def render_into(self, index: int, t: float, out: np.ndarray) -> None:
        """Render program ``index`` at time ``t`` into ``out`` (h, w, 3) uint8."""
        compiled = self.compiled(index)
        draw_sample(compiled, t, out, has_history(compiled))

    def close(self) -> None:
        for compiled in self.cache.values():
            compiled.release()
        self.cache.clear()
        self.engine.release()


class ShaderStream(IterableDataset):
    """Endless batches ``{"images": uint8 (B, H, W, 3), "labels": long (B,), "index": long (B,),
    "mix_labels"/"mix_weights": (B, K) when MixUp is on, "skipped": int}`` from a snapshot.

    Use with ``DataLoader(stream, batch_size=None, num_workers=N)``. ``start_batch`` resumes;
    ``rank``/``world_size`` split the stream between DDP processes.
    """

    def __init__(
        self,
        snapshot: SnapshotData,
        config: StreamConfig,
        *,
        start_batch: int = 0,
        rank: int = 0,
        world_size: int = 1,
        weights: np.ndarray | None = None,
        max_batches: int | None = None,
    ) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.config = config
        self.start_batch = start_batch
        self.rank = rank
        self.world_size = world_size
        self.max_batches = max_batches
        if config.samples_per_program < 1:
            raise ValueError(f"samples_per_program must be >= 1, not {config.samples_per_program}")
        n = len(snapshot)
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float64)
            if weights.shape != (n,) or (weights < 0).any() or weights.sum() <= 0:
                raise ValueError(f"weights must be {n} non-negative numbers, not all zero")
            self.cumulative = np.cumsum(weights / weights.sum())
        else:
            self.cumulative = None
        self._philox: np.random.Philox | None = None  # made where the samples are drawn
        self._ring: _Ring | None = None  # set by ShaderLoader on the copy its workers get

    def _rng(self, global_index: int) -> np.random.Generator:
        """The generator of sample ``global_index``, at the start of its block (module docstring).

        One Philox is moved there per sample: building a seeded generator per sample
        (``default_rng([seed, i])``, its SeedSequence hashing) cost ~0.1 ms of CPU per image
        next to rendering, 10-15 % of a 64² image on llvmpipe; setting the state costs a few µs."""
        if self._philox is None:
            self._philox = np.random.Philox(key=self.config.seed)
            self._generator = np.random.Generator(self._philox)
            self._state = self._philox.state
        state = self._state
        state["state"]["counter"][:] = (0, global_index, 0, 0)
        state["buffer_pos"] = 4  # nothing buffered from the previous sample
        state["has_uint32"] = state["uinteger"] = 0
        self._philox.state = state
        return self._generator

    def _draw_program(self, rng: np.random.Generator) -> int:
        n = len(self.snapshot)
        if self.cumulative is None:
            return int(rng.integers(n))
        return int(min(np.searchsorted(self.cumulative, rng.random(), side="right"), n - 1))

    def _time(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.config.time_min, self.config.time_max))

    def _draws(self, rng: np.random.Generator, k: int) -> _Draw:
        """One draw of a sample's ``k`` programs, their times and (``k`` >= 2) MixUp weights."""
        labels = [self._draw_program(rng) for _ in range(k)]
        times = [self._time(rng) for _ in range(k)]
        weights = rng.dirichlet([self.config.mixup_alpha] * k) if k >= 2 else None
        return labels, times, weights

    def _resolve(self, renderer: _Renderer, leader: int, k: int) -> tuple[_Draw, int]:
        """The first draw of sample ``leader`` whose programs all compile here, and how many draws
        were skipped before it: what the group led by ``leader`` renders."""
        rng = self._rng(leader)
        for skipped in range(MAX_REDRAWS):
            draw = self._draws(rng, k)
            try:
                for label in draw[0]:
                    renderer.compiled(label)
            except ProgramFailed:
                continue
            return draw, skipped
        raise RuntimeError(
            f"no program of snapshot {self.snapshot.name} renders here after {MAX_REDRAWS} draws "
            f"({len(renderer.failed)} failed, e.g. {next(iter(renderer.failed.values()), '?')})"
        )

    def global_index(self, j: int) -> int:
        """The global index of this rank's sample ``j`` (module docstring)."""
        m = self.config.samples_per_program
        return ((j // m) * self.world_size + self.rank) * m + j % m

    def batch(
        self, renderer: _Renderer, b: int, into: tuple[torch.UntypedStorage, int] | None = None
    ) -> dict[str, Any]:
        """Rank-local batch ``b``, rendered into ``into`` (a storage and a byte offset where
        :func:`batch_nbytes` bytes are free) or into a new storage."""
        cfg = self.config
        bs, size, k, m = cfg.batch_size, cfg.size, _mix_k(cfg), cfg.samples_per_program
        storage, offset = into if into is not None else (torch.UntypedStorage(batch_nbytes(cfg)), 0)
        images, ids, mix_weights = _batch_views(storage, offset, cfg)
        array = images.numpy()  # shares memory: GL writes straight into the tensor
        scratch = np.empty((size, size, 3), np.uint8)
        # Written through numpy: a tensor's __setitem__ costs microseconds per call.
        ids_array = ids.numpy()
        weights_array = mix_weights.numpy() if k else None
        skipped, compiles = 0, renderer.compiles
        indices = [self.global_index(b * bs + j) for j in range(bs)]
        # Every sample's first draw comes before any is rendered: the drawing code then runs warm
        # instead of between renders (~5 % of a 64² image's CPU). A group whose programs fail is
        # resolved anew from its leader's generator, as if it had drawn again there.
        programs = max(k, 1)  # a sample's programs: its MixUp partners, or one
        drawn = [self._draws(self._rng(i), programs) for i in indices]
        groups: dict[int, list[int]] = {}  # leader: the programs its group renders
        for j, global_index in enumerate(indices):
            leader = global_index - global_index % m
            labels, times, weights = drawn[j]
            if leader != global_index and leader not in groups:  # the leader was drawn earlier
                at = j - (global_index - leader)
                groups[leader] = drawn[at][0] if at >= 0 else self._draws(self._rng(leader), programs)[0]
            try:
                chosen = self._render(renderer, groups.get(leader, labels), times, weights, array[j], scratch)
            except ProgramFailed:
                resolved, redraws = self._resolve(renderer, leader, programs)
                skipped += redraws
                groups[leader] = resolved[0]
                if leader == global_index:  # the leader's own time and weights come with the draw
                    labels, times, weights = resolved
                chosen = self._render(renderer, resolved[0], times, weights, array[j], scratch)
            groups.setdefault(leader, labels)
            ids_array[j], ids_array[bs + j] = chosen[0], global_index
            if k:
                ids_array[2 * bs + j * k : 2 * bs + (j + 1) * k] = chosen[1]
                weights_array[j] = chosen[2]
        return {
            **_batch_dict(images, ids, mix_weights, cfg),
            "batch": b,
            "skipped": skipped,
            "compiles": renderer.compiles - compiles,
        }

    @staticmethod
    def _render(
        renderer: _Renderer,
        labels: list[int],
        times: list[float],
        weights: np.ndarray | None,
        out: np.ndarray,
        scratch: np.ndarray,
    ) -> tuple[int, np.ndarray | None, np.ndarray | None]:
        """Render one sample into ``out``: one program, or ``labels`` blended with ``weights``;
        returns its label and, under MixUp, its labels and weights heaviest first."""
        if weights is None:
            renderer.render_into(labels[0], times[0], out)
            return labels[0], None, None
        acc = np.zeros(out.shape, np.float32)
        for label, t, w in zip(labels, times, weights, strict=True):
            renderer.render_into(label, t, scratch)
            acc += np.float32(w) * scratch
        np.rint(acc, out=acc)
        out[...] = acc.astype(np.uint8)
        order = np.argsort(-weights, kind="stable")
        return labels[int(order[0])], np.array(labels)[order], weights[order]

    def __iter__(self):
        from render.context import share_cores

        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        if info is not None:  # a worker's environment is its own; all workers of all ranks render at once
            size = (self.config.size, self.config.size)
            share_cores(workers * int(os.environ.get("LOCAL_WORLD_SIZE", "1")), size)
        ring = self._ring if info is not None else None
        renderer = _Renderer(self.snapshot, self.config)
        try:
            b = self.start_batch + worker
            end = None if self.max_batches is None else self.start_batch + self.max_batches
            n = 0  # this worker's batches so far
            while end is None or b < end:
                if ring is None:
                    yield self.batch(renderer, b)
                else:  # into the ring: only the small values travel through the DataLoader
                    out = self.batch(renderer, b, into=(ring.storage, ring.claim(worker, n)))
                    yield {k: v for k, v in out.items() if not isinstance(v, torch.Tensor)} | {
                        RING_KEY: (worker, n)
                    }
                b += workers
                n += 1
        finally:
            renderer.close()


def _mix_k(config: StreamConfig) -> int:
    return config.mixup_k if config.mixup_k >= 2 else 0


def _layout(config: StreamConfig) -> tuple[int, int, int]:
    """Bytes of a batch's ids (int64: labels, indices, then MixUp labels), MixUp weights (float32,
    padded to a multiple of 8) and images (uint8), stored in that order."""
    bs, k = config.batch_size, _mix_k(config)
    return (2 + k) * bs * 8, -(-bs * k * 4 // 8) * 8, bs * config.size * config.size * 3


def batch_nbytes(config: StreamConfig) -> int:
    """Bytes of one batch, laid out as :func:`_layout` says."""
    return sum(_layout(config))


def _batch_views(
    storage: torch.UntypedStorage, offset: int, config: StreamConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Images (bs, size, size, 3), ids and MixUp weights (bs, k) (None without MixUp) as views of
    ``storage`` from byte ``offset`` (a multiple of 8), laid out as :func:`batch_nbytes` says."""
    bs, size, k = config.batch_size, config.size, _mix_k(config)
    id_bytes, weight_bytes, _ = _layout(config)
    ids = torch.empty(0, dtype=torch.long).set_(storage, offset // 8, ((2 + k) * bs,))
    weights = None
    if k:
        weights = torch.empty(0, dtype=torch.float32).set_(storage, (offset + id_bytes) // 4, (bs, k))
    images = torch.empty(0, dtype=torch.uint8).set_(
        storage, offset + id_bytes + weight_bytes, (bs, size, size, 3)
    )
    return images, ids, weights


def _batch_dict(
    images: torch.Tensor, ids: torch.Tensor, weights: torch.Tensor | None, config: StreamConfig
) -> dict[str, Any]:
    bs, k = config.batch_size, _mix_k(config)
    out = {"images": images, "labels": ids[:bs], "index": ids[bs : 2 * bs]}
    if k:
        out["mix_labels"], out["mix_weights"] = ids[2 * bs :].view(bs, k), weights
    return out


#: The key under which a worker's batch names its ring slot: (worker, the worker's batch number).
RING_KEY = "ring_slot"
#: Seconds a worker waits for its oldest slot to be copied out before it gives up.
RING_WAIT_S = 600.0


class _Ring:
    """Shared-memory slots that DataLoader workers render batches into, made before they start.

    Why: handing a batch over as tensors costs, per batch, a new shared-memory file, its page
    faults, and a file-descriptor exchange with an authentication handshake (torch's way of
    passing a storage): about 3 ms of CPU between the worker and the training process, a fifth
    of the rendering of a 64² batch on llvmpipe, more than all of it on a GPU. With the ring, a
    worker renders into slot ``n % slots`` of its own and sends only the slot's name; the
    training process copies the batch out (a memcpy into private memory, so a batch kept for
    as long as the caller likes stays intact) and counts it as taken. A worker writes its batch
    ``n`` only once its batch ``n - slots`` has been taken, so nothing is overwritten while
    unread; with more slots than the DataLoader keeps batches in flight per worker, it never
    waits.
    """

    def __init__(self, workers: int, slots: int, nbytes: int) -> None:
        self.slots = slots
        self.nbytes = nbytes
        self.stride = -(-nbytes // 64) * 64
        _check_shared_memory(workers * slots * self.stride, workers)
        self.storage = torch.UntypedStorage._new_shared(workers * slots * self.stride)
        self.taken = torch.zeros(workers, dtype=torch.long).share_memory_()  # batches copied out

    def _bytes(self) -> np.ndarray:
        """The slots as one numpy array (made in each process: a view, never pickled)."""
        view = self.__dict__.get("_view")
        if view is None:
            size = self.storage.nbytes()
            view = self._view = torch.empty(0, dtype=torch.uint8).set_(self.storage, 0, (size,)).numpy()
        return view

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_view"}

    def claim(self, worker: int, n: int) -> int:
        """Byte offset of the slot for worker ``worker``'s batch ``n``, once it is free."""
        taken = self.taken.numpy()
        need = n - self.slots + 1
        if taken[worker] < need:
            deadline = time.monotonic() + RING_WAIT_S
            while taken[worker] < need:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"loader worker {worker} waited {RING_WAIT_S:.0f} s for the training process "
                        "to take its batches"
                    )
                time.sleep(0.0005)
        return self._offset(worker, n)

    def _offset(self, worker: int, n: int) -> int:
        return (worker * self.slots + n % self.slots) * self.stride

    def take(self, worker: int, n: int, config: StreamConfig) -> dict[str, Any]:
        """Copy worker ``worker``'s batch ``n`` out of its slot; frees the slot."""
        start = self._offset(worker, n)
        storage = torch.UntypedStorage(self.nbytes)
        # numpy's copy, on this thread: torch's would wake its OpenMP threads, which then spin
        # on the cores the workers render on
        np.copyto(
            torch.empty(0, dtype=torch.uint8).set_(storage, 0, (self.nbytes,)).numpy(),
            self._bytes()[start : start + self.nbytes],
        )
        self.taken.numpy()[worker] = n + 1  # after the copy: the worker may now overwrite the slot
        return _batch_dict(*_batch_views(storage, 0, config), config)


def _check_shared_memory(nbytes: int, workers: int, folder: str = "/dev/shm") -> None:
    """Refuse to start workers whose ring does not fit in ``folder`` (where torch puts shared
    memory): past it, a worker dies of SIGBUS mid-batch with no word of why. Docker gives
    containers 64 MiB there unless told otherwise."""
    try:
        stat = os.statvfs(folder)
    except OSError:  # no such folder: not Linux, nothing to check
        return
    free = stat.f_bavail * stat.f_frsize
    if nbytes > free:
        raise UsageProblem(
            f"{workers} loader worker(s) need {nbytes / 2**20:.0f} MiB of shared memory for their "
            f"batches, and {folder} has {free / 2**20:.0f} MiB free",
            hint="give the container more (docker run --shm-size=2g), or use fewer --workers, "
            "a smaller --batch-size or --size",
        )


class ShaderLoader:
    """Batches of a :class:`ShaderStream`, made by ``workers`` spawned processes (or in this one
    with 0), in stream order; each iteration starts its workers anew. Made by :func:`make_loader`.
    """

    def __init__(self, stream: ShaderStream, workers: int = 0, prefetch: int = 2) -> None:
        if workers < 0 or prefetch < 1:
            raise ValueError(f"workers must be >= 0 and prefetch >= 1, not {workers} and {prefetch}")
        self.stream = stream
        # a worker with no batch to make would only start a process and a GL context
        self.workers = workers if stream.max_batches is None else min(workers, stream.max_batches)
        self.prefetch = prefetch

    def __iter__(self):
        if not self.workers:
            yield from torch.utils.data.DataLoader(self.stream, batch_size=None, num_workers=0)
            return
        config = self.stream.config
        # the DataLoader keeps up to `prefetch` batches per worker in flight: two slots more
        ring = _Ring(self.workers, self.prefetch + 2, batch_nbytes(config))
        stream = copy.copy(self.stream)  # the caller's stream stays ring-less
        stream._ring = ring
        loader = torch.utils.data.DataLoader(
            stream,
            batch_size=None,
            num_workers=self.workers,
            prefetch_factor=self.prefetch,
            persistent_workers=False,
            multiprocessing_context="spawn",
        )
        with _sigint_ignored():
            batches = iter(loader)  # starts the workers
        for item in batches:
            worker, n = item.pop(RING_KEY)
            yield {**ring.take(worker, n, config), **item}


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore Ctrl-C while workers start, so that they are born ignoring it (an ignored signal
    stays ignored across exec, and Python then installs no KeyboardInterrupt handler): a Ctrl-C
    at the terminal reaches the whole process group, and the training process, not each worker,
    decides how to stop (:func:`pretrain.train.train` checkpoints first). Workers end with their
    iterator, or when they see the training process gone."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def make_loader(stream: ShaderStream, workers: int = 0, prefetch: int = 2) -> ShaderLoader:
    """An iterable of the stream's batches: made in ``workers`` DataLoader workers, each with its
    own GL context, rendering into a shared ring (:class:`_Ring`). Workers are spawned, never
    forked: a forked copy of a process that ever held a GL context (llvmpipe's threads, the
    driver's state) hangs when it makes its own."""
    return ShaderLoader(stream, workers, prefetch)
