"""Shared fixtures: a fresh, migrated catalogue per test, and tiny self-written shaders."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpus.db import Catalogue, open_catalogue
from corpus.records import InputRecord, PassRecord, ProgramRecord

ROOT = Path(__file__).resolve().parent.parent
SHARED_SAMPLES = ROOT.parent / "shared" / "samples"
EXAMPLES = ROOT / "examples"

needs_samples = pytest.mark.skipif(not SHARED_SAMPLES.is_dir(), reason="../shared/samples is absent")
#: Runs a test's ``catalogue`` on the throwaway PostgreSQL cluster only (skipped where none starts).
on_postgresql = pytest.mark.parametrize("catalogue", ["postgresql"], indirect=True)


def sqlite_only(catalogue: Catalogue, why: str) -> None:
    """Skip the PostgreSQL half of a ``both_backends`` test, saying why it is SQLite's alone."""
    if catalogue.dialect != "sqlite":
        pytest.skip(f"SQLite only: {why}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "both_backends: run the test's `catalogue` on SQLite and on a throwaway PostgreSQL cluster",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    both = metafunc.definition.get_closest_marker("both_backends")
    if "catalogue" not in metafunc.fixturenames or both is None:
        return
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0].split(",") if isinstance(mark.args[0], str) else mark.args[0]
        if "catalogue" in (name.strip() for name in names):
            return  # the test names its backend itself (on_postgresql)
    metafunc.parametrize("catalogue", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture(scope="session")
def pg_cluster():
    """One throwaway PostgreSQL cluster for the session, with a template catalogue at head; the
    test skips with the reason where no cluster can be started."""
    from tests.postgres import TEMPLATE, Cluster, ClusterUnavailable

    try:
        cluster = Cluster()
    except ClusterUnavailable as exc:
        pytest.skip(f"PostgreSQL half skipped: {exc}")
    try:
        cluster.execute(f'CREATE DATABASE "{TEMPLATE}"')
        open_catalogue(cluster.url(TEMPLATE), create=True).close()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def catalogue(request: pytest.FixtureRequest, tmp_path: Path) -> Catalogue:
    """A new catalogue migrated to head by Alembic: a SQLite file, or (for tests marked
    ``both_backends``, in their ``[postgresql]`` half) a new database on a throwaway cluster."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        cat = open_catalogue(str(tmp_path / "catalogue.db"), create=True)
        yield cat
        cat.close()
        return
    from tests.postgres import TEMPLATE

    cluster = request.getfixturevalue("pg_cluster")
    name = cluster.new_database(template=TEMPLATE)
    cat = open_catalogue(cluster.url(name))
    yield cat
    cat.close()
    cluster.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    """``--db`` of an empty database: a new SQLite file, or a new database on the throwaway
    PostgreSQL cluster."""
    if request.param == "sqlite":
        yield str(tmp_path / "cat.db")
        return
    cluster = request.getfixturevalue("pg_cluster")
    name = cluster.new_database()
    yield cluster.url(name)
    cluster.drop_database(name)


GRADIENT = """void mainImage(out vec4 fragColor, in vec2 fragCoord) {
    vec2 uv = fragCoord / iResolution.xy;
    fragColor = vec4(uv, 0.5 + 0.5 * sin(iTime), 1.0);
}
"""


def make_record(
    external_id: str = "abc123",
    code: str = GRADIENT,
    *,
    source: str = "shadertoy",
    title: str | None = "gradient",
    author: str | None = "tester",
    licence_field: str | None = None,
    origin: str | None = "test:1",
    buffer_code: str | None = None,
) -> ProgramRecord:
    passes = []
    if buffer_code is not None:
        passes.append(
            PassRecord(
                "Buffer A",
                "buffer",
                buffer_code,
                [InputRecord(0, "buffer", "Buffer A", {"filter": "linear"})],
            )
        )
    passes.append(
        PassRecord(
            "Image",
            "image",
            code,
            [InputRecord(0, "buffer", "Buffer A", {"filter": "linear"})] if buffer_code is not None else [],
        )
    )
    return ProgramRecord(
        source=source,
        external_id=external_id,
        dialect="shadertoy",
        passes=passes,
        title=title,
        author=author,
        licence_field=licence_field,
        origin=origin,
        url=f"https://www.shadertoy.com/view/{external_id}",
    )


#: Columns that move whenever a program is seen again, changed or not (``corpus.store``).
SEEN_COLUMNS = {("program", "last_seen")}


def catalogue_rows(
    catalogue: Catalogue, exclude: tuple[str, ...] = ("import_run",)
) -> dict[str, list[tuple]]:
    """Every row of every table (FTS shadow tables and ``exclude`` left out), for before/after
    checks; :data:`SEEN_COLUMNS` left out too, since seeing a program again is no change to it."""
    from sqlalchemy import inspect, text

    out: dict[str, list[tuple]] = {}
    with catalogue.engine.connect() as conn:
        inspector = inspect(conn)
        for table in inspector.get_table_names():
            if table in exclude or table.startswith("program_code_fts"):
                continue
            columns = [
                c["name"] for c in inspector.get_columns(table) if (table, c["name"]) not in SEEN_COLUMNS
            ]
            quoted = ", ".join(f'"{c}"' for c in columns)
            select = f'SELECT {quoted} FROM "{table}"'
            out[table] = sorted((tuple(r) for r in conn.execute(text(select))), key=repr)
    return out


def wait_for_count(db: Path, sql: str, at_least: int, timeout: float = 60.0) -> int:
    """Poll a catalogue that another process is writing (read-only) until ``sql`` counts at
    least ``at_least``, or the timeout passes; returns the last count."""
    import sqlite3
    import time

    count, deadline = 0, time.monotonic() + timeout
    while count < at_least and time.monotonic() < deadline:
        time.sleep(0.05)
        if not db.exists():
            continue
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
            count = con.execute(sql).fetchone()[0]
            con.close()
        except sqlite3.OperationalError:
            pass  # the schema is not there yet, or a checkpoint holds a lock: look again
    return count


@pytest.fixture(autouse=True, scope="session")
def _ctrl_c_works():
    """Ctrl-C raises KeyboardInterrupt in this process and reaches the commands it starts, however
    the suite was launched: a shell script's background job (`.ci/run &`) starts with SIGINT
    ignored, and an ignored signal stays ignored across exec, so the tests of Ctrl-C would test
    nothing (and fail)."""
    import signal

    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])


@pytest.fixture(autouse=True)
def _ctrl_c_is_left_as_found(_ctrl_c_works):
    """Every test leaves Ctrl-C as it found it: Python's KeyboardInterrupt handler, not blocked in
    the main thread. A test that leaves it ignored or blocked would make every later command the
    suite starts ignore Ctrl-C (an ignored or blocked signal is inherited across exec)."""
    import signal
    import threading

    def state():
        if threading.current_thread() is not threading.main_thread():
            return None
        return signal.getsignal(signal.SIGINT), signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])

    before = state()
    yield
    after = state()
    assert after == before, f"Ctrl-C's handler and mask changed from {before} to {after}"
