"""Images rendered on the fly from a snapshot: a torch ``IterableDataset`` of whole batches.

Why whole batches: the GL context writes each frame straight into the batch's uint8 tensor
(``read_into``), with no per-image object, and one DataLoader worker owns a batch, so the
stream's order is fixed by arithmetic, not by worker timing. With workers, that tensor is a slot
of a shared-memory ring the training process copies batches out of (:class:`pretrain.loader.Ring`).

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

import os
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from pretrain.loader import RING_KEY, Ring, batch_dict, batch_nbytes, batch_views, mix_k
from pretrain.snapshot import SnapshotData
from pretrain.stream_config import StreamConfig

#: Frames rendered (ending at the sampled time) for programs with feedback, after a reset.
FEEDBACK_FRAMES = 4
#: Draws before a sample gives up on finding a program that renders.
MAX_REDRAWS = 16


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
        self._ring: Ring | None = None  # set by pretrain.loader.ShaderLoader on the copy its workers get

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
        bs, size, k, m = cfg.batch_size, cfg.size, mix_k(cfg), cfg.samples_per_program
        storage, offset = into if into is not None else (torch.UntypedStorage(batch_nbytes(cfg)), 0)
        images, ids, mix_weights = batch_views(storage, offset, cfg)
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
            **batch_dict(images, ids, mix_weights, cfg),
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

    def programs_sampled(self) -> int:
        """How many of the snapshot's programs the stream draws from (those of weight > 0)."""
        if self.cumulative is None:
            return len(self.snapshot)
        return int(np.count_nonzero(np.diff(self.cumulative, prepend=0.0)))

    def prepare_worker(self, workers: int) -> None:
        """Set up a loader worker's process before its GL context exists (its environment is its
        own): llvmpipe's rasterizer threads shared with the other workers of all ranks, and its
        JIT without LLVM's optimisation passes where the stream samples more programs than a
        worker keeps compiled, so that nearly every group of samples compiles a program: there the
        quick JIT made a stream of 13,192 real programs 2.2-2.6x as fast (benchmarks/RESULTS.md,
        issue 11.6); a stream whose programs all stay compiled keeps the optimised one."""
        from render.context import prefer_quick_jit, share_cores

        size = (self.config.size, self.config.size)
        share_cores(workers * int(os.environ.get("LOCAL_WORLD_SIZE", "1")), size)
        if self.programs_sampled() > self.config.cache_programs:
            prefer_quick_jit()

    def __iter__(self):
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        if info is not None:
            self.prepare_worker(workers)
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
