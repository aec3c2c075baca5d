"""``render validate``: every program that has no result for its code and this renderer yet is
compiled, rendered and profiled (:mod:`render.profiling`) in sandboxed worker processes that the
parent kills after a deadline (:mod:`render.sandbox`).

Each result is stored in its own transaction as it arrives (a few milliseconds against the
hundreds a program takes to validate), so a validation killed at any point, even with SIGKILL,
loses only the programs in flight, at most one per worker, which the same command validates
again because nothing was stored for them; nothing stored is validated again. Several
validators (processes or machines) on one catalogue share the work through leases on the
validation queue (:mod:`render.lease`): none validates a program another one holds, and the
programs of one that died are claimed again once its leases expire.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from corpus.db import Catalogue
from corpus.errors import ExitCode, ImageProgramsError
from corpus.filters import ProgramFilter
from render.context import QUICK_JIT_ENV
from render.lease import ValidationLease
from render.profiling import PAIRED_SIZES, PROFILE_TASK, SAMPLE_TIMES
from render.sandbox import SandboxOptions, SandboxPool, SandboxStats
from render.vetting import Policy

#: What validation workers run with unless the environment says otherwise. GALLIVM_PERF=nopt:
#: llvmpipe's JIT skips LLVM's optimisation passes, so a program's first draw (its machine-code
#: compile, most of validation's time) takes about half as long and its frames about a fifth
#: longer; the default vetting policy's timing bounds are set for it (render.vetting). Set
#: GALLIVM_PERF="" to validate with the optimised JIT (then scale those bounds back).
VALIDATION_WORKER_ENV = dict(QUICK_JIT_ENV)


@dataclass
class ValidateOptions(SandboxOptions):
    """The sandbox's options (workers, deadlines, memory bound, device) and what to profile."""

    sizes: tuple[tuple[int, int], ...] = ((64, 64), (256, 256))
    times: tuple[float, ...] = SAMPLE_TIMES
    #: a size's frames stop once 3 are timed and their median is above this (None: never); the
    #: default policy's frame-time bound, so that what it rejects is not drawn further
    frame_ms_cap: float | None = Policy().max_frame_ms_median
    #: how many of the smallest sizes draw each time sample twice, for temporal change (None: all)
    paired_sizes: int | None = PAIRED_SIZES
    again: bool = False
    limit: int | None = None
    flush_every: int = 1  # results stored a transaction; more than 1 risks them on a kill
    worker_env: dict[str, str] = field(default_factory=lambda: dict(VALIDATION_WORKER_ENV))
    #: Seconds a claim on a program lasts without renewal: how long the programs of a validator
    #: that died wait before another validator takes them (renewed every third of it).
    lease_seconds: float = 60.0

    def task_params(self) -> dict[str, Any]:
        """What :func:`render.profiling.profile_task` takes besides the program."""
        return {
            "sizes": self.sizes,
            "times": self.times,
            "frame_ms_cap": self.frame_ms_cap,
            "paired_sizes": self.paired_sizes,
        }


@dataclass
class ValidateReport(SandboxStats):
    renderer: str = ""
    programs: int = 0
    statuses: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    #: Results dropped because another validator had taken over the program's expired lease.
    leases_lost: int = 0

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["statuses"] = dict(self.statuses)
        out["programs_per_second"] = round(self.programs / self.seconds, 3) if self.seconds else None
        return out


class ValidationInterrupted(ImageProgramsError):
    """Ctrl-C during a validation: what was validated is stored, the programs in flight are not."""

    exit_code = ExitCode.INTERRUPTED

    def __init__(
        self, stored: int, in_flight: int, again: bool = False, report: ValidateReport | None = None
    ) -> None:
        super().__init__(
            f"interrupted: {stored} programs validated and stored; {in_flight} in flight dropped",
            # --again validates every program once more, so running it again starts over
            hint="run it again with --again to start over, or without --again to validate only "
            "programs with no result yet (programs not reached keep their earlier result)"
            if again
            else "run the same command again to validate the rest",
        )
        self.stored = stored
        #: what the run did before it stopped (for ``--json``)
        self.report = report


def validation_pool(options: ValidateOptions, report: ValidateReport | None = None) -> SandboxPool:
    """Sandboxed workers that profile programs (``pool.run(items, options.task_params())``),
    counting their starts, kills and crashes into ``report``."""
    return SandboxPool(options, PROFILE_TASK, stats=report)


def validate(
    catalogue: Catalogue,
    flt: ProgramFilter | None = None,
    options: ValidateOptions | None = None,
    *,
    progress: Callable[[dict[str, Any]], None] | None = None,
    on_start: Callable[[str, int], None] | None = None,
    notice: Callable[[str], None] | None = None,
) -> ValidateReport:
    """Validate what has no result for this renderer yet. ``on_start(renderer, n)`` once the work
    is known, ``progress(result)`` after each program, ``notice(line)`` when the run waits on
    programs other validators hold (the command line passes its stderr warning)."""
    options = options or ValidateOptions()
    report = ValidateReport()
    started = time.perf_counter()
    with validation_pool(options, report) as pool:
        report.renderer = pool.renderer()
        lease = ValidationLease(
            catalogue,
            report.renderer,
            batch=options.worker_count(),
            lease_seconds=options.lease_seconds,
            on_wait=notice,
        )
        with lease:
            total = lease.enqueue(flt, again=options.again, limit=options.limit)
            if on_start is not None:
                on_start(report.renderer, total)
            batch: list[dict[str, Any]] = []
            last_flush, stored = time.monotonic(), 0
            try:
                while True:  # again after waiting, when a dead validator's programs come free
                    for result in pool.run(lease.items(), options.task_params()):
                        report.programs += 1
                        report.statuses[result["status"]] += 1
                        batch.append(result)
                        if len(batch) >= options.flush_every or time.monotonic() - last_flush > 2.0:
                            stored += lease.store(batch)
                            batch, last_flush = [], time.monotonic()
                        if progress is not None:  # after the store: what it reports is kept
                            progress(result)
                    stored += lease.store(batch)
                    batch = []
                    if not lease.wait_for_rest():
                        break
            except KeyboardInterrupt:
                in_flight = sum(1 for w in pool.workers if w.item is not None)
                stored += lease.store(batch)  # what came back is kept
                raise ValidationInterrupted(stored, in_flight, options.again, report) from None
            finally:  # an interrupted run's report counts what it lost too
                report.leases_lost = lease.lost
                report.seconds = time.perf_counter() - started
    report.seconds = time.perf_counter() - started  # the workers' shutdown included
    return report
