"""ProgramStore: what one committed batch writes, and what it never does."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import event, select, text

from corpus.errors import CatalogueError
from corpus.models import Blob, Licence, Program, ProgramVersion, Provenance, RenderPass
from corpus.records import sha256_text
from corpus.store import mark_exact_duplicates
from tests.conftest import GRADIENT, catalogue_rows, make_record, sqlite_only
from tests.corpus.helpers import store, typed_rows

pytestmark = pytest.mark.both_backends

MIT_HEADER = "// Copyright (c) 2024 Someone\n// Licensed under the MIT License.\n"


def test_a_new_program_gets_blobs_passes_inputs_licence_and_provenance(catalogue):
    rec = make_record("multi1", buffer_code="void mainImage(out vec4 o, in vec2 f){ o = vec4(1.0); }")
    result = store(catalogue, [rec])
    assert (result.added, result.updated, result.unchanged) == (1, 0, 0)
    with catalogue.session() as s:
        program = s.execute(select(Program)).scalar_one()
        assert program.code_sha256 == rec.code_sha256
        blobs = {b.sha256: b.text for b in s.execute(select(Blob)).scalars()}
        assert blobs[sha256_text(GRADIENT)] == GRADIENT
        passes = s.execute(select(RenderPass).order_by(RenderPass.position)).scalars().all()
        assert [(p.name, p.type) for p in passes] == [("Buffer A", "buffer"), ("Image", "image")]
        assert passes[1].inputs == [
            {"channel": 0, "kind": "buffer", "ref": "Buffer A", "sampler": {"filter": "linear"}}
        ]
        lic = s.get(Licence, program.id)
        assert (lic.spdx, lic.licence_class, lic.evidence) == (
            "CC-BY-NC-SA-3.0",
            "noncommercial",
            "site-default",
        )
        prov = s.execute(select(Provenance)).scalar_one()
        assert (prov.location, prov.via, prov.code_sha256) == ("test:1", "import", rec.code_sha256)


def test_storing_the_same_record_again_changes_nothing(catalogue):
    store(catalogue, [make_record("a"), make_record("b", GRADIENT + "// b\n")])
    before = catalogue_rows(catalogue)
    result = store(catalogue, [make_record("a"), make_record("b", GRADIENT + "// b\n")])
    assert (result.added, result.updated, result.unchanged) == (0, 0, 2)
    assert catalogue_rows(catalogue) == before


def test_changed_code_adds_a_version_and_keeps_the_old_code(catalogue):
    old = make_record("evolving")
    store(catalogue, [old])
    new = make_record("evolving", MIT_HEADER + GRADIENT.replace("0.5 + 0.5", "0.4 + 0.6"))
    result = store(catalogue, [new])
    assert result.updated == 1
    with catalogue.session() as s:
        program = s.execute(select(Program)).scalar_one()
        assert program.code_sha256 == new.code_sha256
        versions = s.execute(select(ProgramVersion.code_sha256).order_by(ProgramVersion.id)).scalars().all()
        assert versions == [old.code_sha256, new.code_sha256]
        assert s.get(Blob, sha256_text(GRADIENT)) is not None  # the old code stays
        lic = s.get(Licence, program.id)
        assert (lic.spdx, lic.evidence, lic.code_sha256) == ("MIT", "code-comment", new.code_sha256)


def test_changed_metadata_updates_the_program_without_a_new_version(catalogue):
    store(catalogue, [make_record("meta", title="old title")])
    result = store(catalogue, [make_record("meta", title="new title")])
    assert result.updated == 1
    with catalogue.session() as s:
        assert s.execute(select(Program.title)).scalar_one() == "new title"
        assert s.execute(select(ProgramVersion)).scalars().all().__len__() == 1


def test_the_same_key_twice_in_one_batch_keeps_both_codes_and_the_later_wins(catalogue):
    first = make_record("twice")
    second = make_record("twice", GRADIENT.replace("sin", "cos"))
    result = store(catalogue, [first, second])
    assert (result.added, result.updated) == (1, 1)
    with catalogue.session() as s:
        assert s.execute(select(Program.code_sha256)).scalar_one() == second.code_sha256
        assert len(s.execute(select(ProgramVersion)).scalars().all()) == 2


def test_excluded_programs_and_authors_are_never_stored(catalogue):
    with catalogue.session() as s:
        s.execute(
            text(
                "INSERT INTO exclusion (source, external_id, author, reason, created_at) VALUES "
                "('shadertoy', 'gone', NULL, 'takedown', '2026-01-01'),"
                "(NULL, NULL, 'Hidden Author', 'asked to be left out', '2026-01-01')"
            )
        )
    result = store(
        catalogue,
        [
            make_record("gone"),
            make_record("kept"),
            make_record("byhidden", GRADIENT + "//x\n", author="hidden author"),
        ],
    )
    assert (result.added, result.excluded) == (1, 2)
    with catalogue.session() as s:
        assert s.execute(select(Program.external_id)).scalars().all() == ["kept"]


def test_exact_duplicates_point_at_the_earliest_original(catalogue):
    later = make_record("later", "// a comment\n" + GRADIENT.replace("    ", "\t"))
    earlier = make_record("earlier", GRADIENT)
    later.created_at = datetime(2020, 1, 1, tzinfo=UTC)
    earlier.created_at = datetime(2015, 1, 1, tzinfo=UTC)
    store(catalogue, [later, earlier])  # stored first, but created later
    with catalogue.session() as s:
        assert mark_exact_duplicates(s.connection()) == 1
    with catalogue.session() as s:
        rows = dict(s.execute(select(Program.external_id, Program.duplicate_of_id)).all())
        ids = dict(s.execute(select(Program.external_id, Program.id)).all())
    assert rows == {"earlier": None, "later": ids["earlier"]}
    # the code of the duplicate changes: the mark goes away
    store(catalogue, [make_record("later", GRADIENT.replace("sin", "cos"))])
    with catalogue.session() as s:
        assert mark_exact_duplicates(s.connection()) == 1
        assert (
            s.execute(select(Program.duplicate_of_id).where(Program.external_id == "later")).scalar() is None
        )


def test_a_full_disk_rolls_the_whole_batch_back(catalogue):
    sqlite_only(catalogue, "a full disk is simulated with PRAGMA max_page_count")
    store(catalogue, [make_record("kept")])
    before = catalogue_rows(catalogue)
    with catalogue.engine.connect() as conn:
        pages = conn.execute(text("PRAGMA page_count")).scalar()

    @event.listens_for(catalogue.engine, "connect")
    def _limit(dbapi_connection, _):
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages + 2}")

    catalogue.engine.dispose()  # new connections get the limit
    big = [make_record(f"big{i}", GRADIENT + f"// {i} " + "x" * 20000 + "\n") for i in range(20)]
    with pytest.raises(CatalogueError, match="full"):
        store(catalogue, big)
    event.remove(catalogue.engine, "connect", _limit)
    catalogue.engine.dispose()
    assert catalogue_rows(catalogue) == before
    with catalogue.engine.connect() as conn:
        assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"


def test_a_program_seen_again_moves_last_seen_whether_or_not_it_changed(catalogue, monkeypatch):
    import corpus.store
    from corpus.queries import ProgramFilter, list_programs, show_program

    def day(n: int) -> datetime:
        return datetime(2026, 1, n, tzinfo=UTC)

    monkeypatch.setattr(corpus.store, "utcnow", lambda: day(1))
    store(catalogue, [make_record("old"), make_record("new", GRADIENT + "//2\n")])
    monkeypatch.setattr(corpus.store, "utcnow", lambda: day(2))
    result = store(catalogue, [make_record("old")])  # unchanged
    assert result.unchanged == 1
    monkeypatch.setattr(corpus.store, "utcnow", lambda: day(3))
    assert store(catalogue, [make_record("new", GRADIENT + "//2\n", title="retitled")]).updated == 1
    old = show_program(catalogue, "shadertoy:old")
    assert (old["first_seen"], old["last_seen"]) == ("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z")
    assert show_program(catalogue, "shadertoy:new")["last_seen"] == "2026-01-03T00:00:00Z"
    monkeypatch.setattr(corpus.store, "utcnow", lambda: day(4))
    store(catalogue, [make_record("old")])
    order = [row["program"] for row in list_programs(catalogue, ProgramFilter(), sort="seen")]
    assert order == ["shadertoy:old", "shadertoy:new"]


def test_postgresql_stores_exactly_the_rows_sqlite_stores(tmp_path, pg_cluster, monkeypatch):
    # PostgreSQL takes each batch as column arrays (corpus.bulk): the rows must come out the same
    from corpus.db import open_catalogue
    from tests.postgres import TEMPLATE

    monkeypatch.setattr("corpus.store.utcnow", lambda: datetime(2026, 5, 4, 3, 2, 1, 123456, tzinfo=UTC))
    awkward = 'float f(){ return 1.0; } // quotes " \\\\ {braces}, NULL, \\t tab, é, 日本 ,\n'
    records = [
        make_record("plain", GRADIENT),
        make_record("awkward", GRADIENT + awkward, title='a "title" {x}', author=None, licence_field="MIT"),
        make_record("multi", MIT_HEADER + GRADIENT, buffer_code="void mainImage(out vec4 o, in vec2 f){}"),
    ]
    records[0].tags, records[0].extra = ["Tunnel", "a,b", "{}"], {"views": 3, "nested": {"x": None}}
    records[1].created_at = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    sqlite_catalogue = open_catalogue(str(tmp_path / "c.db"), create=True)
    name = pg_cluster.new_database(template=TEMPLATE)
    pg_catalogue = open_catalogue(pg_cluster.url(name))
    try:
        for cat in (sqlite_catalogue, pg_catalogue):
            store(cat, records)
            store(cat, [make_record("plain", GRADIENT + "// changed\n")])
        sqlite_rows, pg_rows = typed_rows(sqlite_catalogue), typed_rows(pg_catalogue)
        sqlite_rows.pop("code_search_pending")  # SQLite's queue for its FTS5 index only
        pg_rows.pop("code_search_pending")
        assert pg_rows == sqlite_rows
        assert len(pg_rows["blob"]) == 5 and len(pg_rows["program_version"]) == 4
    finally:
        pg_catalogue.close()
        pg_cluster.drop_database(name)
