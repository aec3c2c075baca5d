"""The validation queue: many ``render validate`` processes (on many machines) share one catalogue.

Each (code, dialect, renderer) to validate is a ``validation_job`` row. A validator

1. :func:`enqueue` s its selection (its filters, ``--limit``, ``--again``): new jobs are added,
   jobs already there are kept (another validator may be working on them), an unleased one
   pointed at a program that has its code now (the one it was queued with may have changed);
2. :func:`claim` s a few open jobs at a time with a lease: its ``holder`` id and an expiry, in
   one ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)`` on PostgreSQL and the same
   statement in a ``BEGIN IMMEDIATE`` transaction on SQLite (one writer), so no two validators
   hold the same job;
3. :func:`renew` s its leases while it works, and :func:`finish` es a job by storing its result
   only while it still holds the lease (``finished_at`` is stamped in the same transaction);
4. a validator that dies stops renewing: its leases expire and its jobs are claimed again.

A finished job is never claimed again. ``--again`` (and a job whose result went missing) reopens
only jobs finished *before* the validator started, so two validators started together do not
validate the same code twice either. Times are the validators' clocks (UTC): machines sharing a
catalogue keep them in step (NTP), and leases last far longer than any skew.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, exists, func, or_, select, tuple_, update

from corpus.bulk import insert_rows
from corpus.db import Catalogue, claim_need_not_be_durable, write_transaction
from corpus.filters import ProgramFilter
from corpus.models import Program, Validation, ValidationJob
from corpus.validations import pending_validation, store_validation

#: Rows per statement when reading or reopening jobs by key.
_CHUNK = 500


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ClaimedJob:
    """A job this validator holds: the representative program whose code it validates."""

    job_id: int
    program_id: int
    code_sha256: str
    dialect: str


def enqueue(
    catalogue: Catalogue,
    renderer: str,
    flt: ProgramFilter | None = None,
    *,
    again: bool = False,
    limit: int | None = None,
    started: datetime,
) -> list[int]:
    """Queue the codes a validator started at ``started`` was asked for; returns their job ids
    in program order (open ones and ones others have finished since ``started`` alike)."""
    renderer = renderer[:255]
    pending = pending_validation(catalogue, renderer, flt, again=again, limit=limit)
    program_ids = [pid for pid, _ in pending]
    keys: list[tuple[int, str, str]] = []
    with catalogue.session() as s:
        for start in range(0, len(program_ids), _CHUNK):
            chunk = program_ids[start : start + _CHUNK]
            found = dict(
                (pid, (code, dialect))
                for pid, code, dialect in s.execute(
                    select(Program.id, Program.code_sha256, Program.dialect).where(Program.id.in_(chunk))
                )
            )
            keys += [(pid, *found[pid]) for pid in chunk if pid in found]
    now = _now()
    job_ids: dict[tuple[str, str], int] = {}
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        with write_transaction(catalogue) as s:
            conn = s.connection()
            insert_rows(
                conn,
                ValidationJob.__table__,
                [
                    {
                        "code_sha256": code,
                        "dialect": dialect,
                        "renderer": renderer,
                        "program_id": pid,
                        "queued_at": now,
                    }
                    for pid, code, dialect in chunk
                ],
                ignore_conflicts_on=["code_sha256", "dialect", "renderer"],
            )
            # a job already there keeps the program it was queued with, whose code may have
            # changed since: point it at this one (which has its code) unless someone holds it
            J = ValidationJob
            conn.execute(
                update(J)
                .where(
                    J.code_sha256 == bindparam("b_code"),
                    J.dialect == bindparam("b_dialect"),
                    J.renderer == renderer,
                    J.program_id != bindparam("b_pid"),
                    J.finished_at.is_(None),
                    or_(J.expires_at.is_(None), J.expires_at < now),
                )
                .values(program_id=bindparam("b_pid")),
                [{"b_code": code, "b_dialect": dialect, "b_pid": pid} for pid, code, dialect in chunk],
            )
            rows = conn.execute(
                select(ValidationJob.id, ValidationJob.code_sha256, ValidationJob.dialect).where(
                    ValidationJob.renderer == renderer,
                    ValidationJob.code_sha256.in_([code for _, code, _ in chunk]),
                )
            ).all()
            wanted = {(code, dialect) for _, code, dialect in chunk}
            rows = [row for row in rows if (row[1], row[2]) in wanted]
            job_ids.update({(code, dialect): jid for jid, code, dialect in rows})
            # asked again (or its result is gone): reopen what was finished before we started;
            # without --again only a job that still has no result (pending_validation read before
            # another validator stored it, a finish stamped before we started while it waited on
            # the write lock: reopening it would validate that code twice)
            reopen = update(ValidationJob).where(
                ValidationJob.id.in_([jid for jid, _, _ in rows]),
                ValidationJob.finished_at < started,
            )
            if not again:
                reopen = reopen.where(
                    ~exists().where(
                        Validation.code_sha256 == ValidationJob.code_sha256,
                        Validation.dialect == ValidationJob.dialect,
                        Validation.renderer == ValidationJob.renderer,
                    )
                )
            conn.execute(reopen.values(finished_at=None, holder=None, expires_at=None))
    return [job_ids[(code, dialect)] for _, code, dialect in keys if (code, dialect) in job_ids]


def claim(
    catalogue: Catalogue,
    renderer: str,
    holder: str,
    count: int,
    *,
    lease_seconds: float,
    among: Sequence[int] | None = None,
    now: datetime | None = None,
) -> list[ClaimedJob]:
    """Take up to ``count`` open jobs for ``renderer`` whose lease is free or expired (of
    ``among`` only, when given), oldest first, leasing them to ``holder`` for ``lease_seconds``."""
    now = now or _now()
    J = ValidationJob
    due = select(J.id).where(
        J.renderer == renderer[:255],
        J.finished_at.is_(None),
        or_(J.expires_at.is_(None), J.expires_at < now),
    )
    if among is not None:
        due = due.where(J.id.in_(list(among)))
    due = due.order_by(J.id).limit(count).with_for_update(skip_locked=True).scalar_subquery()
    with write_transaction(catalogue) as s:
        claim_need_not_be_durable(s)
        rows = s.execute(
            update(J)
            .where(J.id.in_(due))
            .values(holder=holder, expires_at=now + timedelta(seconds=lease_seconds))
            .returning(J.id, J.program_id, J.code_sha256, J.dialect)
            .execution_options(synchronize_session=False)
        ).all()
    return sorted((ClaimedJob(*row) for row in rows), key=lambda job: job.job_id)


def renew(catalogue: Catalogue, holder: str, lease_seconds: float) -> int:
    """Extend every open lease ``holder`` still holds; returns how many."""
    now = _now()
    with write_transaction(catalogue) as s:
        return s.execute(
            update(ValidationJob)
            .where(ValidationJob.holder == holder, ValidationJob.finished_at.is_(None))
            .values(expires_at=now + timedelta(seconds=lease_seconds))
        ).rowcount


def release(catalogue: Catalogue, holder: str) -> int:
    """Give back every open job ``holder`` holds (a stopped validator): claimable at once."""
    with write_transaction(catalogue) as s:
        return s.execute(
            update(ValidationJob)
            .where(ValidationJob.holder == holder, ValidationJob.finished_at.is_(None))
            .values(holder=None, expires_at=None)
        ).rowcount


def finish(catalogue: Catalogue, holder: str, results: Sequence[tuple[int, dict[str, Any]]]) -> list[int]:
    """Store each ``(job id, result)`` whose job ``holder`` still holds (lease expired or not, as
    long as nobody claimed it since), stamping it finished, all in one transaction. Returns the
    job ids stored; a result whose lease was lost is dropped (its new holder stores its own)."""
    stored = []
    with write_transaction(catalogue) as s:
        now = _now()  # once the write lock is ours: not before a validator that started meanwhile
        for job_id, result in results:
            taken = s.execute(
                update(ValidationJob)
                .where(
                    ValidationJob.id == job_id,
                    ValidationJob.holder == holder,
                    ValidationJob.finished_at.is_(None),
                )
                .values(finished_at=now)
            ).rowcount
            if taken:
                store_validation(s, result)
                stored.append(job_id)
    return stored


def programs_for(catalogue: Catalogue, jobs: Sequence[ClaimedJob]) -> dict[int, int]:
    """``{job id: program id}``: a program that has the job's code now, the one it was queued
    with while that still has it, else the first other one. A job whose code no program has
    any more (re-imported or crawled since it was queued) is left out: :func:`drop` it."""
    out: dict[int, int] = {}
    with catalogue.session() as s:
        for start in range(0, len(jobs), _CHUNK):
            chunk = jobs[start : start + _CHUNK]
            keys = {(job.code_sha256, job.dialect) for job in chunk}
            first = dict(
                ((code, dialect), pid)
                for code, dialect, pid in s.execute(
                    select(Program.code_sha256, Program.dialect, func.min(Program.id))
                    .where(tuple_(Program.code_sha256, Program.dialect).in_(list(keys)))
                    .group_by(Program.code_sha256, Program.dialect)
                )
            )
            own = {
                pid: (code, dialect)
                for pid, code, dialect in s.execute(
                    select(Program.id, Program.code_sha256, Program.dialect).where(
                        Program.id.in_([job.program_id for job in chunk])
                    )
                )
            }
            for job in chunk:
                key = (job.code_sha256, job.dialect)
                if own.get(job.program_id) == key:
                    out[job.job_id] = job.program_id
                elif key in first:
                    out[job.job_id] = first[key]
    return out


def drop(catalogue: Catalogue, holder: str, job_ids: Sequence[int]) -> int:
    """Finish, with no result, the open jobs of ``job_ids`` that ``holder`` holds: their code no
    program has any more, so there is nothing to validate (should the code come back, having no
    result it is reopened like any job whose result went missing); returns how many."""
    if not job_ids:
        return 0
    now = _now()
    with write_transaction(catalogue) as s:
        return s.execute(
            update(ValidationJob)
            .where(
                ValidationJob.id.in_(list(job_ids)),
                ValidationJob.holder == holder,
                ValidationJob.finished_at.is_(None),
            )
            .values(finished_at=now)
        ).rowcount


def job_states(catalogue: Catalogue, job_ids: Sequence[int]) -> dict[int, tuple[bool, datetime | None]]:
    """``{job id: (finished, lease expiry)}``: what a validator waits on at the end of its run."""
    out: dict[int, tuple[bool, datetime | None]] = {}
    with catalogue.session() as s:
        for start in range(0, len(job_ids), _CHUNK):
            chunk = list(job_ids[start : start + _CHUNK])
            for jid, finished, expires in s.execute(
                select(ValidationJob.id, ValidationJob.finished_at, ValidationJob.expires_at).where(
                    ValidationJob.id.in_(chunk)
                )
            ):
                if expires is not None and expires.tzinfo is None:
                    expires = expires.replace(tzinfo=UTC)  # SQLite hands back naive UTC
                out[jid] = (finished is not None, expires)
    return out
