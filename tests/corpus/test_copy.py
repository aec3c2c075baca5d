"""corpus db copy: a catalogue moves between SQLite and PostgreSQL and back, losing nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import null, select, update

import corpus.cli
import harvest.cli
from corpus.cliutils import run_app
from corpus.db import open_catalogue
from corpus.exclusions import add_exclusion
from corpus.models import Program, Snapshot
from corpus.queries import ProgramFilter
from corpus.snapshots import create_snapshot, export_snapshot
from corpus.store import ProgramStore, mark_exact_duplicates
from corpus.transfer import copy_catalogue
from corpus.validations import PROFILE_FIELDS, pending_validation, record_validations, store_verdicts
from harvest.frontier import Frontier, NewRequest
from harvest.raw import store_raw_documents
from tests.conftest import EXAMPLES, GRADIENT, make_record
from tests.corpus.helpers import program_keys, typed_rows

DUMPS = ["shaders21k", "shadertoys.jsonl", "glslsandbox.jsonl", "gl-transitions.json", "repo"]
RENDERER = "test vendor | test renderer | 4.5"


def _cli(app, name: str, args: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run_app(app, name, args)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def examples_db(tmp_path, capsys) -> str:
    """A SQLite catalogue of the bundled examples with a row in every table: duplicates,
    a takedown, validations with profiles, verdicts, crawl requests, a raw document, snapshots."""
    db = str(tmp_path / "source.db")
    code, _, err = _cli(
        harvest.cli.app, "harvest", ["import", *[str(EXAMPLES / d) for d in DUMPS], "--db", db], capsys
    )
    assert code == 0, err
    cat = open_catalogue(db)
    with cat.session() as s:  # an original whose id comes after its duplicate's
        ProgramStore(cat).store([make_record("zz_late", GRADIENT + "// twin\n")], s.connection())
        early = make_record("zz_early", GRADIENT + "//   twin\n")
        early.created_at = datetime(2001, 1, 1, tzinfo=UTC)
        ProgramStore(cat).store([early], s.connection())
        mark_exact_duplicates(s.connection())
        # SQL NULL in a JSON column (the store writes JSON null): a copy keeps the two apart
        s.execute(update(Program).where(Program.external_id == "zz_late").values(tags=null()))
        store_raw_documents(s.connection(), 1, [("https://example.org/x", 200, "text/html", b"<p>x</p>")])
    add_exclusion(cat, author="nobody", reason="asked on 2026-01-01")
    Frontier(cat, "glslsandbox").add([NewRequest("https://example.org/item/1.0", priority=2)])
    programs = pending_validation(cat, RENDERER)
    results = []
    for i, (_, key) in enumerate(programs):
        with cat.session() as s:
            program = (
                s.execute(select(Program).where(Program.external_id == key.split(":", 1)[1]))
                .scalars()
                .first()
            )
            sha, dialect = program.code_sha256, program.dialect
        profile = {"width": 64, "height": 64, "stats": {"note": None}} | dict.fromkeys(
            PROFILE_FIELDS, 0.5 + i
        )
        results.append(
            {
                "code_sha256": sha,
                "dialect": dialect,
                "renderer": RENDERER,
                "status": "ok",
                "profiles": [profile],
            }
        )
    record_validations(cat, results)
    with cat.session() as s:
        ids = s.execute(select(Program.id, Program.code_sha256).order_by(Program.id)).all()
    verdicts = [
        {
            "program_id": pid,
            "code_sha256": sha,
            "renderer": RENDERER,
            "vetted": pid % 2 == 0,
            "reasons": ["r"],
        }
        for pid, sha in ids
    ]
    store_verdicts(cat, verdicts, "policy0")
    create_snapshot(cat, "open", allow=["noncommercial", "copyleft", "unknown"])
    create_snapshot(
        cat, "vetted", ProgramFilter(vetted=True, include_duplicates=True), allow=["noncommercial"]
    )
    cat.close()
    return db


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _comparable(db: str) -> dict[str, list[tuple]]:
    cat = open_catalogue(db)
    rows = typed_rows(cat)
    rows.pop("code_search_pending")  # SQLite's queue for its own index, refilled by a copy
    for coordination in ("validation_job", "host_slot"):  # validators' and crawlers' leases, not copied
        assert not rows.pop(coordination)
    cat.close()
    return rows


def test_a_catalogue_goes_to_another_database_and_back_unchanged(
    examples_db, empty_database, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("PGTZ", "America/New_York")  # times must not depend on a session's zone
    code, out, err = _cli(
        corpus.cli.app, "corpus", ["db", "copy", examples_db, empty_database, "--json"], capsys
    )
    assert code == 0, err
    report = json.loads(out)
    source_rows = _comparable(examples_db)
    assert report["rows"] == {table: len(rows) for table, rows in source_rows.items()}
    assert all(
        report["rows"][t]
        for t in (
            "program",
            "blob",
            "validation",
            "profile",
            "vetting",
            "snapshot_entry",
            "raw_document",
            "crawl_request",
            "exclusion",
        )
    )
    assert _comparable(empty_database) == source_rows

    back = str(tmp_path / "back.db")
    code, out, err = _cli(corpus.cli.app, "corpus", ["db", "copy", empty_database, back], capsys)
    assert code == 0, err
    assert "corpus index" in out
    assert _comparable(back) == source_rows

    source, copy = open_catalogue(examples_db), open_catalogue(empty_database)
    for name in ("open", "vetted"):
        assert _files(export_snapshot(source, name, tmp_path / f"a-{name}")) == _files(
            export_snapshot(copy, name, tmp_path / f"b-{name}")
        )
    copied_back = open_catalogue(back)
    for needle in ("mainImage", "gl_FragColor", "no such code"):
        flt = ProgramFilter(code=needle)
        expected = program_keys(source, flt, limit=None)
        assert program_keys(copy, flt, limit=None) == expected
        assert program_keys(copied_back, flt, limit=None) == expected
    # new rows get new ids on the copy (PostgreSQL's sequences were moved past the copied ones)
    with copy.session() as s:
        assert (
            ProgramStore(copy)
            .store([make_record("after_the_copy", GRADIENT + "// new\n")], s.connection())
            .added
            == 1
        )
    assert create_snapshot(copy, "later", allow=["noncommercial"]).entries > 0
    with copy.session() as s:
        hashes = dict(s.execute(select(Snapshot.name, Snapshot.manifest_sha256)).all())
    with source.session() as s:
        assert (
            dict(s.execute(select(Snapshot.name, Snapshot.manifest_sha256)).all()).items() <= hashes.items()
        )


def test_small_batches_copy_the_same_rows(examples_db, empty_database):
    source, target = open_catalogue(examples_db), open_catalogue(empty_database, create=True)
    seen = []
    report = copy_catalogue(source, target, batch_rows=3, progress=seen.append)
    assert max(seen) == 3 and sum(seen) == report.total
    assert _comparable(empty_database) == _comparable(examples_db)


def test_a_destination_with_rows_is_refused_unless_replaced(examples_db, empty_database, capsys):
    target = open_catalogue(empty_database, create=True)
    with target.session() as s:
        ProgramStore(target).store([make_record("already_here")], s.connection())
    code, _, err = _cli(corpus.cli.app, "corpus", ["db", "copy", examples_db, empty_database], capsys)
    assert code == 3
    lines = err.splitlines()
    assert lines[0].startswith("error: the destination ") and "is not empty" in lines[0]
    assert lines[1] == "hint: copy into a new database, or pass --replace to empty this one first"
    assert program_keys(target) == ["shadertoy:already_here"]
    code, _, err = _cli(
        corpus.cli.app, "corpus", ["db", "copy", examples_db, empty_database, "--replace"], capsys
    )
    assert code == 0, err
    assert _comparable(empty_database) == _comparable(examples_db)


def test_a_failed_copy_leaves_the_destination_as_it_was(
    examples_db, empty_database, tmp_path, monkeypatch, capsys
):
    import corpus.transfer

    calls = []

    def failing(conn, table, rows, **kw):
        calls.append(table.name)
        if len(calls) == 4:
            raise corpus.transfer.CatalogueError("the disk fell off", hint="put it back")
        return insert_rows(conn, table, rows, **kw)

    insert_rows = corpus.transfer.insert_rows
    monkeypatch.setattr(corpus.transfer, "insert_rows", failing)
    code, _, err = _cli(corpus.cli.app, "corpus", ["db", "copy", examples_db, empty_database], capsys)
    assert code == 3 and err.startswith("error: the disk fell off")
    if empty_database.endswith(".db"):
        assert not Path(empty_database).exists()  # the file the copy made is gone again
    else:
        assert {t: rows for t, rows in _comparable(empty_database).items() if rows} == {}
    new_file = tmp_path / "fresh.db"
    calls.clear()
    assert _cli(corpus.cli.app, "corpus", ["db", "copy", examples_db, str(new_file)], capsys)[0] == 3
    assert not new_file.exists()


def test_a_catalogue_is_not_copied_onto_itself(examples_db, capsys):
    code, _, err = _cli(corpus.cli.app, "corpus", ["db", "copy", examples_db, examples_db], capsys)
    assert code == 3 and "are the same database" in err
