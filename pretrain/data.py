"""Images rendered on the fly from a snapshot: a torch ``IterableDataset`` of whole batches.

Why whole batches: the GL context writes each frame straight into the batch's preallocated
uint8 tensor (``read_into``), with no per-image object, and one DataLoader worker owns a batch,
so the stream's order is fixed by arithmetic, not by worker timing.

Determinism: sample ``i`` of the global stream draws everything (program, time, MixUp partners
and weights) from ``Generator(Philox(key=seed, counter=[0, i, 0, 0]))``: a counter-based
generator, so each sample starts at its own block of one stream and never reaches the next
sample's (a draw advances the first counter word). Rank ``r`` of ``W`` takes samples
``j * W + r``; its batch ``b`` holds rank-local samples ``b*B … b*B+B-1``; DataLoader worker ``w``
of ``N`` makes batches ``b ≡ w (mod N)``, which is the order the DataLoader returns them in.
So every rank and worker split sees the same samples, and a run resumed at step ``s`` starts at
batch ``s`` and sees exactly what it would have seen.

Each worker owns one headless GL context (created in the worker, never forked), compiles
programs lazily and keeps a bounded LRU cache of compiled ones: compiling every program up front
costs ~70 ms each on llvmpipe (25 minutes for 21k programs). A program that fails here (it stops
compiling on this driver, or draws nothing) is skipped, counted, and replaced by another draw.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

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
    device: str | None = None  # GL device: auto, cpu, gpu, or an EGL index


class ProgramFailed(Exception):
    pass


class _Renderer:
    """A worker's GL engine and its LRU cache of compiled programs."""

    def __init__(self, snapshot: SnapshotData, config: StreamConfig) -> None:
        from render.engine import Engine

        self.snapshot = snapshot
        self.config = config
        self.engine = Engine(device=config.device)
        self.cache: OrderedDict[int, Any] = OrderedDict()
        self.failed: dict[int, str] = {}
        self.compiles = 0

    def compiled(self, index: int):
        from render.engine import ShaderError, UnsupportedProgram

        if index in self.failed:
            raise ProgramFailed(self.failed[index])
        hit = self.cache.get(index)
        if hit is not None:
            self.cache.move_to_end(index)
            return hit
        try:
            compiled = self.engine.compile(self.snapshot.program(index), float_picture=False)
        except (ShaderError, UnsupportedProgram, OSError) as exc:
            self.failed[index] = f"{type(exc).__name__}: {exc}"[:300]
            raise ProgramFailed(self.failed[index]) from None
        self.compiles += 1
        self.cache[index] = compiled
        while len(self.cache) > self.config.cache_programs:
            _, old = self.cache.popitem(last=False)
            old.release()
        return compiled

    def render_into(self, index: int, t: float, out: np.ndarray) -> None:
        """Render program ``index`` at time ``t`` into ``out`` (h, w, 3) uint8."""
        compiled = self.compiled(index)
        size = (out.shape[1], out.shape[0])
        if compiled.plan.feedback_targets() or len(compiled.plan.passes) > 1:
            # Feedback depends on history: start from nothing so the picture depends only on (program, t).
            compiled.reset()
            for k in range(FEEDBACK_FRAMES - 1, -1, -1):
                tk = max(0.0, t - k / 60.0)
                compiled.render(tk, size, frame=max(0, int(tk * 60)))
        else:
            compiled.render(t, size, frame=int(t * 60))
        compiled.read_into(out)

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
        n = len(snapshot)
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float64)
            if weights.shape != (n,) or (weights < 0).any() or weights.sum() <= 0:
                raise ValueError(f"weights must be {n} non-negative numbers, not all zero")
            self.cumulative = np.cumsum(weights / weights.sum())
        else:
            self.cumulative = None
        self._philox: np.random.Philox | None = None  # made where the samples are drawn

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

    def _first_draw(self, global_index: int) -> tuple[int, float]:
        """Program and time that sample ``global_index`` draws first when MixUp is off."""
        rng = self._rng(global_index)
        return self._draw_program(rng), self._time(rng)

    def _sample(self, renderer: _Renderer, global_index: int, out: np.ndarray, scratch: np.ndarray):
        """Fill ``out`` with sample ``global_index``; returns (label, mix labels, mix weights, skipped)."""
        rng = self._rng(global_index)
        k = self.config.mixup_k if self.config.mixup_k >= 2 else 1
        skipped = 0
        labels: list[int] = []
        for _ in range(MAX_REDRAWS):
            labels = [self._draw_program(rng) for _ in range(k)]
            times = [self._time(rng) for _ in range(k)]
            try:
                if k == 1:
                    renderer.render_into(labels[0], times[0], out)
                    return labels[0], None, None, skipped
                weights = rng.dirichlet([self.config.mixup_alpha] * k)
                acc = np.zeros(out.shape, np.float32)
                for label, t, w in zip(labels, times, weights, strict=True):
                    renderer.render_into(label, t, scratch)
                    acc += np.float32(w) * scratch
                np.rint(acc, out=acc)
                out[...] = acc.astype(np.uint8)
                order = np.argsort(-weights, kind="stable")
                return labels[int(order[0])], np.array(labels)[order], weights[order], skipped
            except ProgramFailed:
                skipped += 1
        raise RuntimeError(
            f"no program of snapshot {self.snapshot.name} renders here after {MAX_REDRAWS} draws "
            f"({len(renderer.failed)} failed, e.g. {next(iter(renderer.failed.values()), '?')})"
        )

    def batch(self, renderer: _Renderer, b: int) -> dict[str, Any]:
        """Rank-local batch ``b``."""
        cfg = self.config
        bs, size = cfg.batch_size, cfg.size
        k = cfg.mixup_k if cfg.mixup_k >= 2 else 0
        images, ids, mix_weights = _batch_tensors(bs, size, k, shared=get_worker_info() is not None)
        array = images.numpy()  # shares memory: GL writes straight into the tensor
        scratch = np.empty((size, size, 3), np.uint8)
        # Written through numpy: a tensor's __setitem__ costs microseconds per call.
        ids_array = ids.numpy()
        labels, index = ids[:bs], ids[bs : 2 * bs]
        mix_labels = ids[2 * bs :].view(bs, k) if k else None
        weights_array = mix_weights.numpy() if k else None
        skipped = 0
        indices = [(b * bs + j) * self.world_size + self.rank for j in range(bs)]
        # Without MixUp, every sample's program and time are drawn before any is rendered: the
        # drawing code then runs warm instead of between renders (~5 % of a 64² image's CPU). A
        # sample whose program fails goes through _sample, which draws that program first again,
        # finds it failed and draws anew, exactly as if it had been drawn there.
        drawn = None if k else [self._first_draw(i) for i in indices]
        for j, global_index in enumerate(indices):
            if drawn is not None:
                label, t = drawn[j]
                try:
                    renderer.render_into(label, t, array[j])
                    ids_array[j], ids_array[bs + j] = label, global_index
                    continue
                except ProgramFailed:
                    pass
            label, mls, mws, s = self._sample(renderer, global_index, array[j], scratch)
            ids_array[j] = label
            ids_array[bs + j] = global_index
            skipped += s
            if k:
                ids_array[2 * bs + j * k : 2 * bs + (j + 1) * k] = mls
                weights_array[j] = mws
        out = {"images": images, "labels": labels, "index": index, "batch": b, "skipped": skipped}
        if k:
            out["mix_labels"], out["mix_weights"] = mix_labels, mix_weights
        return out

    def __iter__(self):
        from render.context import share_cores

        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        if info is not None:  # a worker's environment is its own; all workers of all ranks render at once
            size = (self.config.size, self.config.size)
            share_cores(workers * int(os.environ.get("LOCAL_WORLD_SIZE", "1")), size)
        renderer = _Renderer(self.snapshot, self.config)
        try:
            b = self.start_batch + worker
            end = None if self.max_batches is None else self.start_batch + self.max_batches
            while end is None or b < end:
                yield self.batch(renderer, b)
                b += workers
        finally:
            renderer.close()


def _batch_tensors(
    bs: int, size: int, k: int, *, shared: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """A batch's images (uint8 (bs, size, size, 3)), ids (int64: labels, indices, then MixUp
    labels) and MixUp weights (float32 (bs, k), None without MixUp), all views of one storage,
    which is made in shared memory when ``shared`` (in a DataLoader worker).

    Why: a worker hands its batch to the training process storage by storage, each with a
    file-descriptor exchange (a few hundred microseconds of both processes), after copying each
    storage that is not in shared memory yet into a new one. One storage, rendered into where
    it is shared, is one exchange and no copy (about 1 ms less per batch of 64 at 128²)."""
    id_bytes = (2 + k) * bs * 8
    weight_bytes = -(-bs * k * 4 // 8) * 8  # keeps the images' offset a multiple of 8
    nbytes = id_bytes + weight_bytes + bs * size * size * 3
    storage = torch.UntypedStorage._new_shared(nbytes) if shared else torch.UntypedStorage(nbytes)
    ids = torch.empty(0, dtype=torch.long).set_(storage, 0, ((2 + k) * bs,))
    weights = torch.empty(0, dtype=torch.float32).set_(storage, id_bytes // 4, (bs, k)) if k else None
    images = torch.empty(0, dtype=torch.uint8).set_(storage, id_bytes + weight_bytes, (bs, size, size, 3))
    return images, ids, weights


def make_loader(stream: ShaderStream, workers: int = 0, prefetch: int = 2) -> torch.utils.data.DataLoader:
    """A DataLoader over a :class:`ShaderStream`: batches are made in the workers, each with its own
    GL context. Workers are spawned, never forked: a forked copy of a process that ever held a GL
    context (llvmpipe's threads, the driver's state) hangs when it makes its own."""
    kwargs: dict[str, Any] = {"batch_size": None, "num_workers": workers}
    if workers:
        kwargs.update(prefetch_factor=prefetch, persistent_workers=False, multiprocessing_context="spawn")
    return torch.utils.data.DataLoader(stream, **kwargs)
