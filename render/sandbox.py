"""The sandbox: worker processes that render untrusted programs, killed when they hang.

An untrusted shader can hang inside the driver (no way to interrupt it from the same process) or
crash it. So each worker owns one OpenGL context and runs one item at a time, saying which phase
it is in (compile, first frame, every later frame); the parent kills a worker whose phase outlives
its deadline, records ``timeout`` (or ``crash`` when a worker dies), starts a fresh worker and
carries on. Workers whose resident memory grows past a bound are recycled between items (an
address-space limit would be tidier but breaks llvmpipe's code generator).

The sandbox knows no task. A task is a function ``task(engine, item, params, phase) -> result``
named by its import path (``"render.profiling:profile_task"``): the worker imports it the first
time an item asks for it and keeps it (:func:`resolve_task`). ``item`` is a program as plain data
(:meth:`render.program.RenderProgram.to_item`), ``params`` what the task needs besides, and
``phase(name)`` must be called before the compile and before every frame, so that the parent
can enforce its deadlines. Results are dicts with at least ``program`` and ``status``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from corpus.errors import ImageProgramsError, UsageProblem
from render.context import NoContextError

Task = Callable[[Any, dict[str, Any], dict[str, Any], Callable[[str], None]], dict[str, Any]]
_PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)


def cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


#: Why ``--workers 0`` (render in this process) is refused by the commands that use the sandbox.
IN_PROCESS_REFUSED = (
    "--workers 0 would render untrusted shaders in this process, where one that hangs or crashes "
    "the driver takes the whole command down"
)


@dataclass
class SandboxOptions:
    workers: int | None = None  # None: one per core; 0 is refused (see IN_PROCESS_REFUSED)
    compile_deadline: float = 30.0  # seconds for compiling and the first frame (llvmpipe JIT)
    frame_deadline: float = 10.0  # seconds for any later frame
    start_deadline: float = 60.0  # seconds for a new worker to create its context
    memory_limit_mb: int = 2048  # a worker above this resident size is replaced between items
    device: str | None = None
    #: environment defaults of the workers (e.g. Mesa's switches); a variable already set wins
    worker_env: dict[str, str] = field(default_factory=dict)

    def worker_count(self) -> int:
        if self.workers is None:
            return cores()
        if self.workers < 1:
            raise UsageProblem(
                IN_PROCESS_REFUSED, hint="give --workers 1 or more, or leave it out for one per core"
            )
        return self.workers


@dataclass
class SandboxStats:
    workers_started: int = 0
    timeouts_killed: int = 0
    crashes: int = 0
    recycled: int = 0


def failure(item: dict[str, Any] | None, renderer: str | None, status: str, log: str) -> dict[str, Any]:
    """The result of an item that produced none of its own (timeout, crash)."""
    item = item or {}
    return {
        "program": item.get("program"),
        "code_sha256": item.get("code_sha256"),
        "dialect": item.get("dialect"),
        "renderer": renderer,
        "status": status,
        "log": log,
    }


@contextlib.contextmanager
def _ctrl_c_ignored() -> Iterator[None]:
    """Processes started inside never see Ctrl-C (SIGINT): a terminal sends it to the whole
    process group, and the parent decides what stops and kills its workers, which must not die
    printing tracebacks.

    SIGINT is *blocked* in the calling thread meanwhile, not ignored: a child inherits the blocked
    mask across fork and exec from its first instruction on (and Python leaves it so), while a
    Ctrl-C that reaches the parent during the spawn stays pending and is delivered when the mask
    is restored. Ignoring it instead lost such a Ctrl-C: a command replacing a worker at that
    moment ran on as if it had not been pressed."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class _Worker:
    """One worker process (``python -m render.sandbox``) and the pipe to it.

    A plain subprocess rather than multiprocessing's spawn: it never re-imports the caller's main
    module, so the sandbox works the same from a command, a test or a user's script."""

    def __init__(self, device: str | None, env_defaults: dict[str, str] | None = None) -> None:
        ours, theirs = socket.socketpair()
        # The worker imports this package: make sure it can, installed or run from a source tree.
        env = dict(env_defaults or {}) | dict(os.environ)  # the user's environment wins
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PROJECT_ROOT, env.get("PYTHONPATH")) if p)
        with _ctrl_c_ignored():
            self.process = subprocess.Popen(
                [sys.executable, "-m", "render.sandbox", str(theirs.fileno()), device or ""],
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


_NOT_STARTED = ImageProgramsError(
    "a render worker did not start in time",
    hint="check `render info`; on a busy machine raise --start-deadline",
)


class SandboxPool:
    """Worker processes under deadlines that run ``task`` (an import path, see the module
    docstring) on items: ``run(items, params)`` yields one result per item, in any order."""

    def __init__(self, options: SandboxOptions, task: str, *, stats: SandboxStats | None = None) -> None:
        self.options = options
        self.task = task
        self.stats = stats if stats is not None else SandboxStats()
        self.workers: list[_Worker] = []

    def _start(self) -> _Worker:
        worker = _Worker(self.options.device, self.options.worker_env)
        worker.deadline = time.monotonic() + self.options.start_deadline
        self.stats.workers_started += 1
        self.workers.append(worker)
        return worker

    def renderer(self) -> str:
        """Start one worker and return the renderer string it reports (the key of results)."""
        self.options.worker_count()  # a count that cannot work fails before any worker starts
        if not self.workers:
            self._start()
        worker = self.workers[0]
        while worker.renderer is None:
            if not worker.conn.poll(max(0.0, worker.deadline - time.monotonic())):
                worker.kill()
                raise _NOT_STARTED
            self._receive(worker)
        return worker.renderer

    def _receive(self, worker: _Worker):
        message = worker.conn.recv()
        kind = message[0]
        if kind == "hello":
            worker.renderer = message[1]
            worker.deadline = float("inf")
        elif kind == "error":  # the worker has no context: nothing can run, say why as it said
            _, text, hint, exit_code = message
            error = NoContextError(f"a render worker could not start: {text}", hint=hint)
            error.exit_code = exit_code
            raise error
        elif kind == "phase":
            worker.phase = message[1]
            worker.phase_started = time.monotonic()
            limit = self.options.frame_deadline if message[1] == "frame" else self.options.compile_deadline
            worker.deadline = worker.phase_started + limit
        return message

    def run(self, items: Iterable[dict[str, Any]], params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Run the task on each item; yields one result per item, in any order."""
        todo = iter(items)
        exhausted = False
        wanted = self.options.worker_count()
        while len(self.workers) < wanted:
            self._start()
        while True:
            for worker in [w for w in self.workers if w.renderer is not None and w.item is None]:
                item = None if exhausted else next(todo, None)
                if item is None:
                    exhausted = True
                    break
                worker.item = item
                worker.phase = "queued"
                worker.deadline = time.monotonic() + self.options.compile_deadline
                worker.conn.send(("run", self.task, item, params))
            if exhausted and not any(w.item is not None for w in self.workers):
                return
            busy = [w for w in self.workers if w.item is not None or w.renderer is None]
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
                            self.stats.recycled += 1
                            self.workers.remove(worker)
                            worker.stop()
                            self._start()
                elif time.monotonic() > worker.deadline:
                    if worker.item is None:  # a worker that never said hello
                        worker.kill()
                        self.workers.remove(worker)
                        raise _NOT_STARTED
                    limit = time.monotonic() - worker.phase_started
                    self.stats.timeouts_killed += 1
                    log = f"killed after {limit:.1f} s in {worker.phase} (deadline exceeded)"
                    yield from self._replace(worker, "timeout", log)

    def _death(self, worker: _Worker) -> str:
        code = worker.exitcode()
        self.stats.crashes += 1
        if code is not None and code < 0:
            return f"render worker died from signal {-code} during {worker.phase}"
        return f"render worker exited with code {code} during {worker.phase}"

    def _replace(self, worker: _Worker, status: str, log: str) -> Iterator[dict[str, Any]]:
        result = failure(worker.item, worker.renderer, status, log) if worker.item is not None else None
        worker.kill()
        self.workers.remove(worker)
        self._start()
        if result is not None:
            yield result

    def close(self) -> None:
        """Stop every worker: an idle one politely, a busy one at once (its item is dropped)."""
        for worker in self.workers:
            if worker.item is None:
                worker.stop()
            else:
                worker.kill()
        self.workers = []

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# The worker process

_TASKS: dict[str, Task] = {}


def resolve_task(path: str) -> Task:
    """The task function named ``path`` (``"package.module:function"``), imported once."""
    task = _TASKS.get(path)
    if task is None:
        module, _, name = path.partition(":")
        task = _TASKS[path] = getattr(importlib.import_module(module), name)
    return task


def rss_bytes() -> int:
    """This process's resident memory now (not its peak)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: the peak is the best we have
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main(conn: Connection, device: str | None = None) -> None:
    """Worker process entry point: say hello with the renderer string, then serve items."""
    from render.engine import Engine

    try:
        engine = Engine(device=device)
    except ImageProgramsError as exc:
        conn.send(("error", exc.message, exc.hint, exc.exit_code))
        return
    except Exception as exc:  # noqa: BLE001 - report why, then exit
        hint = "run `render info` to see what is missing"
        conn.send(("error", f"{type(exc).__name__}: {exc}", hint, NoContextError.exit_code))
        return
    conn.send(("hello", engine.renderer_string, os.getpid()))

    def phase(name: str) -> None:
        conn.send(("phase", name))

    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message[0] == "stop":
            return
        _, task, item, params = message
        try:
            result = resolve_task(task)(engine, item, params, phase)
        except Exception as exc:  # noqa: BLE001 - a driver error on one program is that program's crash
            result = failure(item, engine.renderer_string, "crash", f"{type(exc).__name__}: {exc}"[:4000])
        conn.send(("result", result, rss_bytes()))


if __name__ == "__main__":  # started by SandboxPool with the fd of its end of a socket pair
    main(Connection(int(sys.argv[1])), sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else None)
