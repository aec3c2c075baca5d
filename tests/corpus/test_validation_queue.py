"""The validation queue's leases (corpus.validation_queue), without rendering: who may claim,
renew and store what, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from corpus import validation_queue as queue
from corpus.models import Program, Validation, ValidationJob
from tests.conftest import GRADIENT, make_record
from tests.corpus.helpers import store

pytestmark = pytest.mark.both_backends

RENDERER = "Mesa | llvmpipe | 4.5"


def _programs(catalogue, n: int) -> None:
    store(
        catalogue,
        [make_record(f"p{i}", GRADIENT.replace("fragCoord", f"fragCoord * {i + 1}.0")) for i in range(n)],
    )


def _result(job: queue.ClaimedJob, status: str = "ok") -> tuple[int, dict]:
    return job.job_id, {
        "code_sha256": job.code_sha256,
        "dialect": job.dialect,
        "renderer": RENDERER,
        "status": status,
        "profiles": [],
    }


def _enqueue(catalogue, **kw) -> list[int]:
    return queue.enqueue(catalogue, RENDERER, started=kw.pop("started", datetime.now(UTC)), **kw)


def test_two_validators_claim_disjoint_jobs_and_a_live_lease_is_not_taken(catalogue):
    _programs(catalogue, 6)
    jobs = _enqueue(catalogue)
    assert len(jobs) == 6
    a = queue.claim(catalogue, RENDERER, "a", 4, lease_seconds=60)
    b = queue.claim(catalogue, RENDERER, "b", 4, lease_seconds=60)
    assert len(a) == 4 and len(b) == 2
    assert not {j.job_id for j in a} & {j.job_id for j in b}
    assert queue.claim(catalogue, RENDERER, "c", 4, lease_seconds=60) == []


def test_an_expired_lease_is_claimed_again_and_its_old_holder_cannot_store(catalogue):
    _programs(catalogue, 2)
    _enqueue(catalogue)
    dead = queue.claim(catalogue, RENDERER, "dead", 2, lease_seconds=60)
    later = datetime.now(UTC) + timedelta(seconds=61)
    taken = queue.claim(catalogue, RENDERER, "alive", 1, lease_seconds=60, now=later)
    assert [j.job_id for j in taken] == [dead[0].job_id]
    # the dead holder's result for the job it lost is dropped; the one it still holds is stored
    assert queue.finish(catalogue, "dead", [_result(j, "timeout") for j in dead]) == [dead[1].job_id]
    assert queue.finish(catalogue, "alive", [_result(taken[0])]) == [taken[0].job_id]
    with catalogue.session() as s:
        assert s.scalar(select(func.count()).select_from(Validation)) == 2
        statuses = dict(s.execute(select(Validation.code_sha256, Validation.status)).all())
    assert statuses[taken[0].code_sha256] == "ok"
    assert queue.claim(catalogue, RENDERER, "x", 9, lease_seconds=60, now=later) == []


def test_renewal_keeps_a_lease_and_release_frees_it_at_once(catalogue):
    _programs(catalogue, 1)
    _enqueue(catalogue)
    (job,) = queue.claim(catalogue, RENDERER, "a", 1, lease_seconds=1)
    assert queue.renew(catalogue, "a", 3600) == 1
    soon = datetime.now(UTC) + timedelta(seconds=5)
    assert queue.claim(catalogue, RENDERER, "b", 1, lease_seconds=60, now=soon) == []
    assert queue.release(catalogue, "a") == 1
    assert [j.job_id for j in queue.claim(catalogue, RENDERER, "b", 1, lease_seconds=60)] == [job.job_id]


def test_again_reopens_only_what_was_finished_before_the_validator_started(catalogue):
    _programs(catalogue, 2)
    before = datetime.now(UTC)
    _enqueue(catalogue, started=before)
    jobs = queue.claim(catalogue, RENDERER, "a", 2, lease_seconds=60)
    queue.finish(catalogue, "a", [_result(jobs[0])])
    # one that started before the result was stored does not validate it again
    assert len(_enqueue(catalogue, again=True, started=before)) == 2
    assert [j.job_id for j in queue.claim(catalogue, RENDERER, "b", 9, lease_seconds=60)] == []
    queue.finish(catalogue, "a", [_result(jobs[1])])
    # one started afterwards with --again does; without --again there is nothing to do
    assert _enqueue(catalogue, started=datetime.now(UTC)) == []
    _enqueue(catalogue, again=True, started=datetime.now(UTC) + timedelta(seconds=1))
    assert len(queue.claim(catalogue, RENDERER, "c", 9, lease_seconds=60)) == 2


def test_claims_among_a_selection_take_only_from_it(catalogue):
    _programs(catalogue, 5)
    jobs = _enqueue(catalogue)
    got = queue.claim(catalogue, RENDERER, "a", 5, lease_seconds=60, among=jobs[3:])
    assert [j.job_id for j in got] == jobs[3:]


def _code_of(i: int) -> str:
    return GRADIENT.replace("fragCoord", f"fragCoord * {i + 1}.0")


def test_enqueue_points_an_open_unleased_job_at_a_program_that_still_has_its_code(catalogue):
    # p0 and p1 share code X; the job for X remembers p0, whose code then changes to Y
    store(catalogue, [make_record("p0", _code_of(0)), make_record("p1", _code_of(0))])
    (x,) = _enqueue(catalogue)
    store(catalogue, [make_record("p0", _code_of(1))])
    jobs = _enqueue(catalogue)
    assert x in jobs and len(jobs) == 2
    claimed = {j.job_id: j for j in queue.claim(catalogue, RENDERER, "a", 9, lease_seconds=60)}
    with catalogue.session() as s:
        p1 = s.scalar(select(Program.id).where(Program.external_id == "p1"))
    assert claimed[x].program_id == p1


def test_enqueue_leaves_a_leased_job_s_program_alone(catalogue):
    store(catalogue, [make_record("p0", _code_of(0)), make_record("p1", _code_of(0))])
    _enqueue(catalogue)
    (held,) = queue.claim(catalogue, RENDERER, "a", 1, lease_seconds=60)
    store(catalogue, [make_record("p0", _code_of(1))])
    _enqueue(catalogue)
    with catalogue.session() as s:
        assert s.get(ValidationJob, held.job_id).program_id == held.program_id


def test_a_job_whose_code_no_program_has_any_more_is_finished_without_a_result(catalogue):
    _programs(catalogue, 2)
    jobs = _enqueue(catalogue)
    claimed = queue.claim(catalogue, RENDERER, "a", 2, lease_seconds=60)
    assert queue.drop(catalogue, "a", [claimed[0].job_id]) == 1
    assert queue.drop(catalogue, "b", [claimed[1].job_id]) == 0  # not its holder
    states = queue.job_states(catalogue, jobs)
    assert states[claimed[0].job_id][0] and not states[claimed[1].job_id][0]
    with catalogue.session() as s:
        assert s.scalar(select(func.count()).select_from(Validation)) == 0


def test_a_result_stored_while_a_validator_starts_is_not_validated_again(catalogue, monkeypatch):
    """Validator b read what has no result (pending_validation) just before a stored the
    result; a's finish was stamped before b started (it waited on the write lock). Without
    --again, b must not reopen the job: it has its result."""
    from corpus.validations import pending_validation

    _programs(catalogue, 1)
    _enqueue(catalogue)
    stale = pending_validation(catalogue, RENDERER)
    (job,) = queue.claim(catalogue, RENDERER, "a", 1, lease_seconds=60)
    queue.finish(catalogue, "a", [_result(job)])
    monkeypatch.setattr(queue, "pending_validation", lambda *args, **kw: stale)
    _enqueue(catalogue, started=datetime.now(UTC) + timedelta(seconds=1))
    assert queue.claim(catalogue, RENDERER, "b", 9, lease_seconds=60) == []
