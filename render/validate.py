"""``render validate``: every program that has no result for its code and this renderer yet is
compiled, rendered and profiled in worker processes that the parent kills after a deadline.

Why processes: an untrusted shader can hang inside the driver (no way to interrupt it from the
same process) or crash it. So each worker (:mod:`render.worker`) owns one context and says which
phase it is in; the parent kills a worker whose compile or frame outlives its deadline, records
``timeout`` (or ``crash`` when a worker dies), starts a fresh worker and carries on. Workers whose
resident memory grows past a bound are recycled between programs (an address-space limit would
be tidier but breaks llvmpipe's code generator).

Results are written in small transactions as they arrive; a killed validation loses only the
programs in flight, which the next run picks up because nothing was stored for them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from corpus.db import Catalogue
from corpus.errors import ImageProgramsError
from corpus.filters import ProgramFilter
from corpus.validations import pending_validation, record_validations, work_items
from render.worker import SAMPLE_TIMES


@dataclass
class ValidateOptions:
    workers: int = 0  # 0: one per core
    compile_deadline: float = 30.0  # seconds for compiling and the first frame (llvmpipe JIT)
    frame_deadline: float = 10.0  # seconds for any later frame
    start_deadline: float = 60.0  # seconds for a new worker to create its context
    sizes: tuple[tuple[int, int], ...] = ((64, 64), (256, 256))
    times: tuple[float, ...] = SAMPLE_TIMES
    memory_limit_mb: int = 2048  # a worker above this resident size is replaced between programs
    again: bool = False
    limit: int | None = None
    flush_every: int = 25
    device: str | None = None

    def worker_count(self) -> int:
        return self.workers or max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


@dataclass
class ValidateReport:
    renderer: str = ""
    programs: int = 0
    statuses: Counter = field(default_factory=Counter)
    timeouts_killed: int = 0
    crashes: int = 0
    recycled: int = 0
    workers_started: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["statuses"] = dict(self.statuses)
        out["programs_per_second"] = round(self.programs / self.seconds, 3) if self.seconds else None
        return out


_PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)


class _Worker:
    """One worker process (``python -m render.worker``) and the pipe to it.

    A plain subprocess rather than multiprocessing's spawn: it never re-imports the caller's main
    module, so ``validate`` works the same from a command, a test or a user's script."""

    def __init__(self, device: str | None) -> None:
        ours, theirs = socket.socketpair()
        # The worker imports this package: make sure it can, installed or run from a source tree.
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PROJECT_ROOT, env.get("PYTHONPATH")) if p)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "render.worker", str(theirs.fileno()), device or ""],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            env=env,
        )
        theirs.close()
        self.conn = Connection(os.dup(ours.fileno()))
        ours.close()
        self.renderer: str | None = None
        self.item: dict[str, Any] | None = None
        self.phase = "start"
        self.phase_started = time.monotonic()
        self.deadline = float("inf")

    @property
    def pid(self) -> int:
        return self.process.pid

    def exitcode(self) -> int | None:
        try:
            return self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.exitcode()
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(("stop",))
        except (BrokenPipeError, OSError):
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.exitcode()
        self.conn.close()


class WorkerPool:
    """Worker processes under deadlines. Usable on its own: ``run(items)`` yields results."""

    def __init__(
        self, options: ValidateOptions, report: ValidateReport | None = None, *, task: str = "item"
    ) -> None:
        """``task`` says what workers do with each item: ``item`` validates and profiles it,
        ``frames`` renders it for a contact sheet (:func:`render.pictures.render_item`)."""
        self.options = options
        self.report = report or ValidateReport()
        self.task = task
        self.workers: list[_Worker] = []

    def _start(self) -> _Worker:
        worker = _Worker(self.options.device)
        worker.deadline = time.monotonic() + self.options.start_deadline
        self.report.workers_started += 1
        self.workers.append(worker)
        return worker

    def renderer(self) -> str:
        """Start one worker and return the renderer string it reports (the key of results)."""
        if not self.workers:
            self._start()
        worker = self.workers[0]
        while worker.renderer is None:
            if not worker.conn.poll(max(0.0, worker.deadline - time.monotonic())):
                worker.kill()
                raise ImageProgramsError(
                    "a render worker did not start in time",
                    hint="check `render info`; on a busy machine raise --start-deadline",
                )
            self._receive(worker)
        return worker.renderer

    def _receive(self, worker: _Worker):
        message = worker.conn.recv()
        kind = message[0]
        if kind == "hello":
            worker.renderer = message[1]
            worker.deadline = float("inf")
        elif kind == "error":
            raise ImageProgramsError(
                f"a render worker could not create an OpenGL context: {message[1]}",
                hint="run `render info` to see what is missing",
            )
        elif kind == "phase":
            worker.phase = message[1]
            worker.phase_started = time.monotonic()
            limit = self.options.frame_deadline if message[1] == "frame" else self.options.compile_deadline
            worker.deadline = worker.phase_started + limit
        return message

    def _failed(self, worker: _Worker, status: str, log: str) -> dict[str, Any]:
        item = worker.item or {}
        return {
            "program": item.get("program"),
            "code_sha256": item.get("code_sha256"),
            "dialect": item.get("dialect"),
            "renderer": worker.renderer or self.report.renderer,
            "status": status,
            "log": log,
        }

    def run(self, items):
        """Validate ``items`` (work items from corpus); yields one result per item, in any order."""
        todo = iter(items)
        queue: deque[dict[str, Any]] = deque()
        exhausted = False
        wanted = self.options.worker_count()
        while len(self.workers) < wanted:
            self._start()
        while True:
            idle = [w for w in self.workers if w.renderer is not None and w.item is None]
            for worker in idle:
                if not queue and not exhausted:
                    nxt = next(todo, None)
                    if nxt is None:
                        exhausted = True
                    else:
                        queue.append(nxt)
                if not queue:
                    break
                worker.item = queue.popleft()
                worker.phase = "queued"
                worker.deadline = time.monotonic() + self.options.compile_deadline
                worker.conn.send((self.task, worker.item, self.options.sizes, self.options.times))
            busy = [w for w in self.workers if w.item is not None or w.renderer is None]
            if exhausted and not queue and not any(w.item is not None for w in self.workers):
                break
            timeout = min((w.deadline for w in busy), default=time.monotonic() + 1) - time.monotonic()
            ready = wait([w.conn for w in busy], timeout=min(max(timeout, 0.0), 1.0)) if busy else []
            for worker in list(self.workers):
                if worker.conn in ready:
                    try:
                        message = self._receive(worker)
                    except (EOFError, OSError):
                        yield from self._replace(worker, "crash", self._death(worker))
                        continue
                    if message[0] == "result":
                        worker.item = None
                        worker.deadline = float("inf")
                        yield message[1]
                        if message[2] > self.options.memory_limit_mb * 2**20:
                            self.report.recycled += 1
                            self.workers.remove(worker)
                            worker.stop()
                            self._start()
                elif time.monotonic() > worker.deadline:
                    if worker.item is None:  # a worker that never said hello
                        worker.kill()
                        self.workers.remove(worker)
                        raise ImageProgramsError(
                            "a render worker did not start in time",
                            hint="check `render info`; on a busy machine raise --start-deadline",
                        )
                    limit = time.monotonic() - worker.phase_started
                    self.report.timeouts_killed += 1
                    log = f"killed after {limit:.1f} s in {worker.phase} (deadline exceeded)"
                    yield from self._replace(worker, "timeout", log)

    def _death(self, worker: _Worker) -> str:
        code = worker.exitcode()
        self.report.crashes += 1
        if code is not None and code < 0:
            return f"render worker died from signal {-code} during {worker.phase}"
        return f"render worker exited with code {code} during {worker.phase}"

    def _replace(self, worker: _Worker, status: str, log: str):
        result = self._failed(worker, status, log) if worker.item is not None else None
        worker.kill()
        self.workers.remove(worker)
        self._start()
        if result is not None:
            yield result

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers = []

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def validate(
    catalogue: Catalogue,
    flt: ProgramFilter | None = None,
    options: ValidateOptions | None = None,
    *,
    progress: Callable[[dict[str, Any]], None] | None = None,
    on_start: Callable[[str, int], None] | None = None,
) -> ValidateReport:
    """Validate what has no result for this renderer yet. ``on_start(renderer, n)`` once the work
    is known, ``progress(result)`` after each program."""
    options = options or ValidateOptions()
    report = ValidateReport()
    started = time.perf_counter()
    with WorkerPool(options, report) as pool:
        report.renderer = pool.renderer()
        pending = pending_validation(
            catalogue, report.renderer, flt, again=options.again, limit=options.limit
        )
        if on_start is not None:
            on_start(report.renderer, len(pending))
        batch: list[dict[str, Any]] = []
        last_flush = time.monotonic()
        for result in pool.run(work_items(catalogue, [pid for pid, _ in pending])):
            report.programs += 1
            report.statuses[result["status"]] += 1
            batch.append(result)
            if progress is not None:
                progress(result)
            if len(batch) >= options.flush_every or time.monotonic() - last_flush > 2.0:
                record_validations(catalogue, batch)
                batch, last_flush = [], time.monotonic()
        if batch:
            record_validations(catalogue, batch)
    report.seconds = time.perf_counter() - started
    return report
