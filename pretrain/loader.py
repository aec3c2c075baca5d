"""Batches in shared memory, and the loader that hands a :class:`pretrain.data.ShaderStream`'s
batches to training.

A batch is one block of bytes (ids, MixUp weights, images: :func:`layout`), so that a loader
worker renders straight into a slot of a shared-memory ring (:class:`Ring`) and only the slot's
name crosses the process boundary; :class:`ShaderLoader` starts the workers (spawned, each with
its own GL context) and copies each batch out of its slot.
"""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from corpus.errors import UsageProblem
from pretrain.stream_config import StreamConfig

#: A :class:`pretrain.data.ShaderStream` (not imported: the stream imports this module).
ShaderStream = torch.utils.data.IterableDataset


def mix_k(config: StreamConfig) -> int:
    return config.mixup_k if config.mixup_k >= 2 else 0


def layout(config: StreamConfig) -> tuple[int, int, int]:
    """Bytes of a batch's ids (int64: labels, indices, then MixUp labels), MixUp weights (float32,
    padded to a multiple of 8) and images (uint8), stored in that order."""
    bs, k = config.batch_size, mix_k(config)
    return (2 + k) * bs * 8, -(-bs * k * 4 // 8) * 8, bs * config.size * config.size * 3


def batch_nbytes(config: StreamConfig) -> int:
    """Bytes of one batch, laid out as :func:`layout` says."""
    return sum(layout(config))


def batch_views(
    storage: torch.UntypedStorage, offset: int, config: StreamConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Images (bs, size, size, 3), ids and MixUp weights (bs, k) (None without MixUp) as views of
    ``storage`` from byte ``offset`` (a multiple of 8), laid out as :func:`batch_nbytes` says."""
    bs, size, k = config.batch_size, config.size, mix_k(config)
    id_bytes, weight_bytes, _ = layout(config)
    ids = torch.empty(0, dtype=torch.long).set_(storage, offset // 8, ((2 + k) * bs,))
    weights = None
    if k:
        weights = torch.empty(0, dtype=torch.float32).set_(storage, (offset + id_bytes) // 4, (bs, k))
    images = torch.empty(0, dtype=torch.uint8).set_(
        storage, offset + id_bytes + weight_bytes, (bs, size, size, 3)
    )
    return images, ids, weights


def batch_dict(
    images: torch.Tensor, ids: torch.Tensor, weights: torch.Tensor | None, config: StreamConfig
) -> dict[str, Any]:
    bs, k = config.batch_size, mix_k(config)
    out = {"images": images, "labels": ids[:bs], "index": ids[bs : 2 * bs]}
    if k:
        out["mix_labels"], out["mix_weights"] = ids[2 * bs :].view(bs, k), weights
    return out


#: The key under which a worker's batch names its ring slot: (worker, the worker's batch number).
RING_KEY = "ring_slot"
#: Seconds a worker waits for its oldest slot to be copied out before it gives up.
RING_WAIT_S = 600.0


class Ring:
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
        check_shared_memory(workers * slots * self.stride, workers)
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
        return batch_dict(*batch_views(storage, 0, config), config)


def check_shared_memory(nbytes: int, workers: int, folder: str = "/dev/shm") -> None:
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
        ring = Ring(self.workers, self.prefetch + 2, batch_nbytes(config))
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
        with sigint_ignored():
            batches = iter(loader)  # starts the workers
        for item in batches:
            worker, n = item.pop(RING_KEY)
            yield {**ring.take(worker, n, config), **item}


@contextlib.contextmanager
def sigint_ignored() -> Iterator[None]:
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
    own GL context, rendering into a shared ring (:class:`Ring`). Workers are spawned, never
    forked: a forked copy of a process that ever held a GL context (llvmpipe's threads, the
    driver's state) hangs when it makes its own."""
    return ShaderLoader(stream, workers, prefetch)
