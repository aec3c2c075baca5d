"""A validator's share of the validation queue (:mod:`corpus.validation_queue`): claim a few
jobs at a time, keep their leases alive while the sandbox works on them, and store a result only
while its lease is held. Several ``render validate`` processes, on one machine or many, each run
one of these against the same catalogue and split the work between them.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from corpus import validation_queue as queue
from corpus.db import Catalogue, lease_holder
from corpus.filters import ProgramFilter
from corpus.validations import work_items

#: Open jobs of this validator's selection a claim looks among: wide enough that a claim finds
#: free jobs past those other validators hold, narrow enough to stay one short statement.
WINDOW = 256

#: Longest sleep while the rest of the selection is leased to other validators.
MAX_WAIT_S = 0.5


class ValidationLease:
    """One validator's claims on the queue. Use as a context manager: it renews the leases in a
    background thread every third of ``lease_seconds`` and gives back what it still holds when
    it stops (an interrupted run's programs are claimable at once, not after the lease)."""

    def __init__(
        self,
        catalogue: Catalogue,
        renderer: str,
        *,
        batch: int,
        lease_seconds: float,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        self.catalogue = catalogue
        self.renderer = renderer
        self.batch = max(1, batch)
        self.lease_seconds = lease_seconds
        self.holder = lease_holder()
        self.started = datetime.now(UTC)
        self.lost = 0
        #: told once, when :meth:`wait_for_rest` starts waiting on other validators' leases
        self.on_wait = on_wait
        self._jobs: dict[tuple[str, str], int] = {}
        self._remaining: list[int] = []
        self._parked: list[int] = []
        self._stop = threading.Event()
        self._renewer = threading.Thread(target=self._renew_loop, name="lease-renewer", daemon=True)

    def __enter__(self) -> ValidationLease:
        self._renewer.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self._stop.set()
        # bounded: a renewal stuck on a busy database must not keep an interrupted run alive
        # (the thread is a daemon, and a lease left behind expires)
        self._renewer.join(timeout=self.lease_seconds / 3 + 1)
        # a database that failed, or a second Ctrl-C while the release waits on a busy SQLite
        # lock, must not replace why the run stopped (and its hint): the leases expire instead
        ignored = (Exception,) if exc_type is None else (Exception, KeyboardInterrupt)
        with contextlib.suppress(*ignored):
            queue.release(self.catalogue, self.holder)

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                queue.renew(self.catalogue, self.holder, self.lease_seconds)
            except Exception:  # a lost connection: the next beat tries again, the lease outlives it
                continue

    def enqueue(self, flt: ProgramFilter | None, *, again: bool, limit: int | None) -> int:
        """Queue this run's selection; returns how many jobs it holds."""
        self._remaining = queue.enqueue(
            self.catalogue, self.renderer, flt, again=again, limit=limit, started=self.started
        )
        self._parked = []
        return len(self._remaining)

    def items(self) -> Iterator[dict[str, Any]]:
        """The work items (see :func:`corpus.validations.work_items`) of the jobs of this run
        that this validator can claim now, a batch at a time. Jobs other validators hold are set
        aside for :meth:`wait_for_rest`; it never waits here, where the results of this
        validator's own programs in flight could not be collected and stored meanwhile."""
        while self._remaining:
            window = self._remaining[:WINDOW]
            claimed = queue.claim(
                self.catalogue,
                self.renderer,
                self.holder,
                self.batch,
                lease_seconds=self.lease_seconds,
                among=window,
            )
            if claimed:
                taken = {job.job_id for job in claimed}
                self._remaining = [j for j in self._remaining if j not in taken]
                yield from self._items_of(claimed)
                continue
            # nothing free in the window: finished jobs leave it, leased ones wait aside
            states = queue.job_states(self.catalogue, window)
            self._parked += [j for j in window if j in states and not states[j][0]]
            self._remaining = self._remaining[len(window) :]

    def _items_of(self, claimed: list[queue.ClaimedJob]) -> Iterator[dict[str, Any]]:
        """The work items of the jobs just claimed, each built from the job's own code (a
        program's code may have changed since the job was queued with it); jobs whose code no
        program has any more are dropped. A result is matched to its job by (code, dialect),
        which names one job of this renderer: the item's code is the job's."""
        programs = queue.programs_for(self.catalogue, claimed)
        queue.drop(self.catalogue, self.holder, [j.job_id for j in claimed if j.job_id not in programs])
        wanted = {(j.code_sha256, j.dialect): j.job_id for j in claimed if j.job_id in programs}
        for item in work_items(self.catalogue, [programs[j.job_id] for j in claimed if j.job_id in programs]):
            job_id = wanted.get((item["code_sha256"], item["dialect"]))
            if job_id is None:  # its code changed again this very moment: left to the lease
                continue
            self._jobs[(item["code_sha256"], item["dialect"])] = job_id
            yield item | {"job_id": job_id}

    def wait_for_rest(self) -> bool:
        """Once this validator has stored everything it held: wait while other validators hold
        the rest of this run's jobs. True when some became claimable (a validator died or gave
        them back: run :meth:`items` again), False when all are finished."""
        told = False
        while self._parked:
            states = queue.job_states(self.catalogue, self._parked)
            self._parked = [j for j in self._parked if j in states and not states[j][0]]
            now = datetime.now(UTC)
            expiries = [states[j][1] for j in self._parked]
            if any(e is None or e <= now for e in expiries):
                self._remaining, self._parked = self._parked, []
                return True
            if self._parked:
                if not told and self.on_wait is not None:  # else a rerun after kill -9 sits silent
                    told = True
                    longest = math.ceil((max(expiries) - now).total_seconds())
                    n = len(self._parked)
                    self.on_wait(
                        f"waiting up to {longest} s for {n} program{'s' if n != 1 else ''} held by "
                        "another validator (a killed one's leases expire)"
                    )
                time.sleep(min(MAX_WAIT_S, (min(expiries) - now).total_seconds() + 0.01))
        return False

    def store(self, results: list[dict[str, Any]]) -> int:
        """Store the results whose leases this validator still holds; returns how many."""
        pairs = []
        for result in results:
            key = (result["code_sha256"], result["dialect"])
            job_id = self._jobs.pop(key, None)
            if job_id is None or result.get("job_id", job_id) != job_id:
                self.lost += 1
                continue
            pairs.append((job_id, result))
        stored = len(queue.finish(self.catalogue, self.holder, pairs)) if pairs else 0
        self.lost += len(pairs) - stored
        return stored
