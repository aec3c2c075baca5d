"""Several ``render validate`` processes on one catalogue (issue 12 item 3): they share the work
through leases, and the programs of one killed mid-run are validated by the others."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from corpus.models import Program, Validation, ValidationJob
from tests.conftest import make_record
from tests.corpus.helpers import store

pytestmark = pytest.mark.both_backends

#: One validator: claims and stores are logged (pid, job) as they happen, by wrapping the queue.
VALIDATOR = """
import os, sys
from corpus import validation_queue as q
from corpus.db import open_catalogue
from render.validate import ValidateOptions, validate

log = sys.argv[2]

def logged(what, fn, ids):
    def wrapper(*args, **kw):
        out = fn(*args, **kw)
        with open(log, "a") as f:
            f.writelines(f"{what} {os.getpid()} {i}\\n" for i in ids(out))
        return out
    return wrapper

q.claim = logged("claim", q.claim, lambda jobs: [j.job_id for j in jobs])
q.finish = logged("store", q.finish, lambda ids: ids)
options = ValidateOptions(workers=1, sizes=((16, 16),), times=(0.0,), compile_deadline=20.0,
                          lease_seconds=float(sys.argv[3]), flush_every=int(sys.argv[4]))
validate(open_catalogue(sys.argv[1]), options=options)
"""

SHADER = "void mainImage(out vec4 c, in vec2 f) {{ c = vec4(f / iResolution.xy, {k}.0 / 40.0, 1.0); }}"


def _log_lines(path: Path) -> list[tuple[str, int, int]]:
    if not path.exists():
        return []
    return [(w, int(p), int(j)) for w, p, j in (line.split() for line in path.read_text().splitlines())]


def _holds_after_store(lines: list[tuple[str, int, int]], pid: int) -> bool:
    """The validator's last logged step is a claim, and it stored one before: it holds programs mid-run."""
    mine = [what for what, p, _ in lines if p == pid]
    return "store" in mine and mine[-1] == "claim"


def _freeze(pid: int) -> None:
    """SIGSTOP, and wait until the kernel says the process is stopped (the signal lands asynchronously)."""
    os.kill(pid, signal.SIGSTOP)
    stat = Path(f"/proc/{pid}/stat")
    deadline = time.monotonic() + 10
    while stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] not in "tTZX":
        assert time.monotonic() < deadline, f"validator {pid} did not stop"
        time.sleep(0.001)


def test_four_validators_one_killed_leave_every_program_with_exactly_one_result(catalogue, tmp_path):
    # 30 codes, and 6 programs that duplicate one of them (validated once, with their twin)
    records = [make_record(f"v{k}", SHADER.format(k=k)) for k in range(30)]
    records += [make_record(f"dup{k}", SHADER.format(k=k)) for k in range(6)]
    store(catalogue, records)
    log = tmp_path / "log"
    env = os.environ | {"PYTHONPATH": str(Path(__file__).parents[2])}

    def validator() -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", VALIDATOR, catalogue.url, str(log), "2", "1"],
            env=env,
            start_new_session=True,
            stderr=subprocess.PIPE,
        )

    procs = [validator() for _ in range(4)]
    try:
        # the victim: whichever validator is first seen just after a claim that follows one of its
        # stores (it holds programs, mid-run); on a loaded machine any of the four may be the one
        # that starts late and finds nothing left, so none is chosen in advance. Only while work
        # is left for the others: a victim seen holding the last job could store it before the
        # kill lands, and then nothing would be left to take over
        victim = None
        deadline = time.monotonic() + 120
        while victim is None and time.monotonic() < deadline:
            lines = _log_lines(log)
            if sum(what == "store" for what, _, _ in lines) > 30 - 2 * len(procs):
                break
            for p in procs:
                if p.poll() is None and _holds_after_store(lines, p.pid):
                    # frozen before deciding: a running validator could store the job and claim the
                    # next in the database before logging it, between this read and the kill
                    _freeze(p.pid)
                    if _holds_after_store(_log_lines(log), p.pid):
                        victim = p
                        break
                    os.kill(p.pid, signal.SIGCONT)
            assert any(p.poll() is None for p in procs), "every validator finished before one could be killed"
            time.sleep(0.01)
        if victim is None:
            pytest.fail("no validator was seen holding a job after storing one while work was left")
        victim.send_signal(signal.SIGKILL)
        for p in procs:
            if p is victim:
                continue
            _, err = p.communicate(timeout=180)
            assert p.returncode == 0, err.decode()[-2000:]
    finally:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)  # the victim's orphaned sandbox worker too
            p.wait()

    events = _log_lines(log)
    claims, stores = defaultdict(list), Counter()
    for what, pid, job in events:
        if what == "claim":
            claims[job].append(pid)
        else:
            stores[job] += 1
    with catalogue.session() as s:
        codes = s.scalar(select(func.count(func.distinct(Program.code_sha256))))
        validations = Counter(s.execute(select(Validation.code_sha256)).scalars())
        current = set(s.execute(select(Program.code_sha256)).scalars())
        open_jobs = s.scalar(
            select(func.count()).select_from(ValidationJob).where(ValidationJob.finished_at.is_(None))
        )
    assert codes == 30
    # every program's current code has exactly one result, and nothing else was stored
    assert set(validations) == current and set(validations.values()) == {1}
    assert open_jobs == 0
    # no result stored twice; a program claimed twice only when the killed validator held it
    assert set(stores.values()) == {1}
    # the victim may be killed after storing a result and before logging it: only its last claim
    unlogged = set(claims) - set(stores)
    assert len(stores) + len(unlogged) == 30 and len(unlogged) <= 1, unlogged
    assert all(claims[job] == [victim.pid] for job in unlogged), (unlogged, claims)
    for job, holders in claims.items():
        survivors = [pid for pid in holders if pid != victim.pid]
        assert len(survivors) <= 1 and len(holders) - len(survivors) <= 1, (job, holders)
    taken_over = [job for job, holders in claims.items() if len(holders) == 2]
    # what the victim held at the kill was claimed again, unless the kill came between storing it
    # and logging the store (the one unlogged job above): a claim of one job at a time holds no more
    assert taken_over or unlogged, "the killed validator's programs were not claimed again"
    assert all(claims[job][0] == victim.pid for job in taken_over)


def test_validators_that_keep_results_unwritten_do_not_wait_on_each_other(catalogue, tmp_path):
    """Each validator writes its results every 25 or 2 s and waits at the end for the jobs the
    other holds: it must write its own before it waits, or each waits on the other for ever."""
    store(catalogue, [make_record(f"w{k}", SHADER.format(k=k)) for k in range(4)])
    env = os.environ | {"PYTHONPATH": str(Path(__file__).parents[2])}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", VALIDATOR, catalogue.url, str(tmp_path / "log"), "600", "25"],
            env=env,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    try:
        for p in procs:
            _, err = p.communicate(timeout=120)
            assert p.returncode == 0, err.decode()[-2000:]
    finally:
        for p in procs:
            p.kill()
            p.wait()
    with catalogue.session() as s:
        assert s.scalar(select(func.count()).select_from(Validation)) == 4


RENDERER = "Mesa | llvmpipe | 4.5"


def _fake_result(item: dict) -> dict:
    """What a validator would store for ``item``, without rendering it."""
    keys = ("program", "code_sha256", "dialect", "job_id")
    return {k: item[k] for k in keys} | {"renderer": RENDERER, "status": "ok", "profiles": []}


def _open_jobs(catalogue) -> int:
    with catalogue.session() as s:
        return s.scalar(
            select(func.count()).select_from(ValidationJob).where(ValidationJob.finished_at.is_(None))
        )


def test_a_job_is_validated_for_its_own_code_after_its_program_changed(catalogue):
    """The job for code X was queued with p0; p0's code changes to Y before it is claimed. The
    work item is X's (from p1, which still has it), its result finishes the job, and Y is not
    validated under X's lease; a job whose code nobody has any more is dropped, not left open."""
    from render.lease import ValidationLease

    store(catalogue, [make_record("p0", SHADER.format(k=0)), make_record("p1", SHADER.format(k=0))])
    store(catalogue, [make_record("gone", SHADER.format(k=1))])
    with ValidationLease(catalogue, RENDERER, batch=4, lease_seconds=60) as lease:
        assert lease.enqueue(None, again=False, limit=None) == 2
        store(catalogue, [make_record("p0", SHADER.format(k=2)), make_record("gone", SHADER.format(k=3))])
        items = list(lease.items())
        with catalogue.session() as s:
            x = s.scalar(select(Program.code_sha256).where(Program.external_id == "p1"))
        assert [(i["program"], i["code_sha256"]) for i in items] == [("shadertoy:p1", x)]
        assert lease.store([_fake_result(i) for i in items]) == 1
        assert lease.lost == 0
        assert not lease.wait_for_rest()
    assert _open_jobs(catalogue) == 0
    with catalogue.session() as s:
        assert list(s.execute(select(Validation.code_sha256)).scalars()) == [x]


def test_a_release_that_fails_on_exit_does_not_hide_why_the_validator_stopped(catalogue, monkeypatch):
    """Ctrl-C during a busy SQLite lock, or a database gone: giving the leases back fails; the
    error the user sees is still the interruption's (its leases expire instead)."""
    from sqlalchemy.exc import OperationalError

    from corpus import validation_queue
    from render.lease import ValidationLease
    from render.validate import ValidationInterrupted

    def failing_release(*args, **kw):
        raise OperationalError("UPDATE validation_job", {}, Exception("database is locked"))

    monkeypatch.setattr(validation_queue, "release", failing_release)
    with pytest.raises(ValidationInterrupted):
        with ValidationLease(catalogue, RENDERER, batch=1, lease_seconds=60):
            raise ValidationInterrupted(0, 1)
    with ValidationLease(catalogue, RENDERER, batch=1, lease_seconds=60):
        pass  # nor does it fail a run that stopped normally

    def interrupted_release(*args, **kw):
        raise KeyboardInterrupt  # a second Ctrl-C while the release waits on a lock

    monkeypatch.setattr(validation_queue, "release", interrupted_release)
    with pytest.raises(ValidationInterrupted):
        with ValidationLease(catalogue, RENDERER, batch=1, lease_seconds=60):
            raise ValidationInterrupted(0, 1)


class _InterruptedPool:
    """A sandbox pool that renders nothing: it answers the first item with a result for code the
    lease never handed out (so it is counted lost), then Ctrl-C arrives."""

    workers: list = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def renderer(self) -> str:
        return RENDERER

    def run(self, items, params):
        item = next(iter(items))
        yield _fake_result(item) | {"code_sha256": "0" * 64}
        raise KeyboardInterrupt


def test_an_interrupted_validation_reports_the_results_it_lost(catalogue, monkeypatch):
    import render.validate
    from render.validate import ValidateOptions, ValidationInterrupted, validate

    store(catalogue, [make_record("i0", SHADER.format(k=0))])
    monkeypatch.setattr(render.validate, "validation_pool", lambda options, report: _InterruptedPool())
    with pytest.raises(ValidationInterrupted) as stopped:
        validate(catalogue, options=ValidateOptions(workers=1))
    assert stopped.value.report.leases_lost == 1
    assert stopped.value.report.to_json()["leases_lost"] == 1


def test_waiting_on_another_validator_s_leases_says_so_once(catalogue, capsys):
    """A rerun after kill -9 finds the killed validator's leases: it waits for them to expire,
    and says so on stderr instead of sitting silent for up to lease_seconds."""
    from corpus import validation_queue
    from corpus.cliutils import warn
    from render.validate import ValidateOptions, validate

    store(catalogue, [make_record(f"h{k}", SHADER.format(k=k)) for k in range(2)])
    validation_queue.enqueue(catalogue, RENDERER, started=datetime.now(UTC))
    validation_queue.claim(catalogue, RENDERER, "killed", 2, lease_seconds=1.5)

    class NothingToRender(_InterruptedPool):
        def run(self, items, params):
            yield from (_fake_result(item) for item in items)

    import render.validate

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(render.validate, "validation_pool", lambda options, report: NothingToRender())
        report = validate(catalogue, options=ValidateOptions(workers=1, lease_seconds=60), notice=warn)
    assert report.programs == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("waiting")]
    assert len(lines) == 1, err
    assert re.fullmatch(
        r"waiting up to [12] s for 2 programs held by another validator \(a killed one's leases expire\)",
        lines[0],
    ), lines


def test_an_interrupted_validate_json_still_prints_what_was_done(catalogue, monkeypatch, capsys):
    import json

    import render.validate
    from tests.render.helpers import run_render

    store(catalogue, [make_record("j0", SHADER.format(k=0))])
    monkeypatch.setattr(render.validate, "validation_pool", lambda options, report: _InterruptedPool())
    code, out, err = run_render(["validate", "--db", catalogue.url, "--sizes", "16,256", "--json"], capsys)
    assert code == 130 and "error: interrupted" in err, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["interrupted"] is True and report["leases_lost"] == 1
