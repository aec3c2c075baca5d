"""The catalogue file: migrations, pragmas, revisions and the errors a user can meet."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import inspect, text

from corpus import db as dbmod
from corpus.errors import CatalogueError
from corpus.store import ProgramStore
from tests.conftest import make_record

TABLES = {
    "source",
    "blob",
    "raw_document",
    "program",
    "program_version",
    "pass",
    "provenance",
    "licence",
    "exclusion",
    "import_run",
    "snapshot",
    "snapshot_entry",
    "code_search_pending",
    "crawl_request",
}


def _tables(catalogue) -> set[str]:
    return set(inspect(catalogue.engine).get_table_names())


def _indexes(catalogue, table: str) -> set[str]:
    return {index["name"] for index in inspect(catalogue.engine).get_indexes(table)}


def test_new_catalogue_is_at_head_with_wal_busy_timeout_and_foreign_keys(catalogue):
    assert catalogue.current_revision() == dbmod.head_revision()
    assert TABLES <= _tables(catalogue)
    with catalogue.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == dbmod.BUSY_TIMEOUT_MS


def test_upgrade_downgrade_upgrade_round_trip(empty_database):
    cat = dbmod.connect(empty_database, must_exist=False)
    assert dbmod.upgrade(cat) == (None, dbmod.head_revision())
    assert TABLES <= _tables(cat)
    on_postgresql = cat.dialect == "postgresql"
    assert ("program_code" in _tables(cat)) == on_postgresql
    assert ("ix_program_title_trgm" in _indexes(cat, "program")) == on_postgresql
    if on_postgresql:  # code is compressed with lz4 where the server has it
        with cat.engine.connect() as conn:
            lz4 = conn.exec_driver_sql(
                "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
            ).scalar()
            method = conn.exec_driver_sql(
                "SELECT attcompression FROM pg_attribute"
                " WHERE attrelid = 'blob'::regclass AND attname = 'text'"
            ).scalar()
        assert method == ("l" if lz4 else "")
    dbmod.downgrade(cat, "0005_author_key_licence_class")
    assert "program_code" not in _tables(cat) and "ix_program_title_trgm" not in _indexes(cat, "program")
    dbmod.downgrade(cat, "0001_catalogue")
    assert "crawl_request" not in _tables(cat) and "program" in _tables(cat)
    dbmod.upgrade(cat)
    assert "crawl_request" in _tables(cat)
    dbmod.downgrade(cat, "base")
    assert not (TABLES & _tables(cat))
    assert cat.current_revision() is None
    dbmod.upgrade(cat)
    assert TABLES <= _tables(cat)
    # the schema works after the round trip
    store = ProgramStore(cat)
    with cat.session() as s:
        assert store.store([make_record()], s.connection()).added == 1
    cat.close()


def test_missing_catalogue_is_a_clear_error_and_creates_no_file(tmp_path):
    path = tmp_path / "nothing.db"
    with pytest.raises(CatalogueError, match="no catalogue at") as err:
        dbmod.open_catalogue(str(path))
    assert "harvest import" in err.value.hint
    assert not path.exists()


@pytest.mark.both_backends
def test_catalogue_from_a_newer_version_is_refused(catalogue, tmp_path):
    with catalogue.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    with pytest.raises(CatalogueError, match="newer imageprograms"):
        dbmod.open_catalogue(catalogue.url.removeprefix("sqlite:///"))
    with pytest.raises(CatalogueError, match="newer imageprograms"):
        dbmod.upgrade(catalogue)


def test_catalogue_without_schema_asks_for_upgrade(tmp_path):
    path = tmp_path / "plain.db"
    sqlite3.connect(path).execute("CREATE TABLE unrelated (x)").connection.commit()
    with pytest.raises(CatalogueError, match="no imageprograms catalogue") as err:
        dbmod.open_catalogue(str(path))
    assert "corpus db upgrade" in err.value.hint


def test_read_only_catalogue_refuses_writes_cleanly(catalogue, tmp_path):
    path = catalogue.url.removeprefix("sqlite:///")
    with catalogue.session() as s:
        ProgramStore(catalogue).store([make_record("before")], s.connection())
    catalogue.close()
    ro = dbmod.open_catalogue(f"file:{path}?mode=ro")
    with pytest.raises(CatalogueError, match="read-only"):
        with ro.session() as s:
            ProgramStore(ro).store([make_record("after")], s.connection())
    with ro.session() as s:
        keys = s.execute(text("SELECT external_id FROM program")).scalars().all()
    assert keys == ["before"]


def test_locked_catalogue_reports_the_lock(catalogue, monkeypatch):
    path = catalogue.url.removeprefix("sqlite:///")
    catalogue.close()
    monkeypatch.setattr(dbmod, "BUSY_TIMEOUT_MS", 200)
    holder = sqlite3.connect(path, timeout=0.1)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        cat = dbmod.open_catalogue(path)
        with pytest.raises(CatalogueError, match="locked"):
            with cat.session() as s:
                ProgramStore(cat).store([make_record()], s.connection())
    finally:
        holder.rollback()
        holder.close()


def test_resolve_db_url_takes_paths_urls_and_the_environment(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(dbmod.ENV_DB, raising=False)
    assert dbmod.resolve_db_url(None) == f"sqlite:///{tmp_path / 'catalogue.db'}"
    monkeypatch.setenv(dbmod.ENV_DB, "other.db")
    assert dbmod.resolve_db_url(None) == f"sqlite:///{tmp_path / 'other.db'}"
    assert dbmod.resolve_db_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"


def test_a_plain_postgresql_url_means_psycopg_3_and_its_password_is_never_shown():
    assert dbmod.resolve_db_url("postgresql://u:secret@h/db") == "postgresql+psycopg://u:secret@h/db"
    assert dbmod.resolve_db_url("postgres://u@h:5433/db") == "postgresql+psycopg://u@h:5433/db"
    assert dbmod.display_url("postgresql+psycopg://u:secret@h/db") == "postgresql+psycopg://u:***@h/db"
    assert dbmod.display_url("sqlite:////data/cat.db") == "/data/cat.db"


def test_a_postgresql_url_works_as_typed(pg_cluster):
    from tests.postgres import TEMPLATE

    name = pg_cluster.new_database(template=TEMPLATE)
    try:
        cat = dbmod.open_catalogue(f"postgresql://{pg_cluster.user}@/{name}?host={pg_cluster.socket_dir}")
        assert cat.engine.driver == "psycopg"
        assert cat.current_revision() == dbmod.head_revision()
        cat.close()
    finally:
        pg_cluster.drop_database(name)


def test_planner_statistics_leave_the_code_search_tables_alone(catalogue):
    with catalogue.session() as s:
        ProgramStore(catalogue).store(
            [make_record(f"p{i}", f"// {i}\n" + "void f(){}") for i in range(3)], s.connection()
        )
    dbmod.refresh_statistics(catalogue)
    with catalogue.engine.connect() as conn:
        tables = set(conn.execute(text("SELECT tbl FROM sqlite_stat1")).scalars())
    assert "program" in tables
    assert not {t for t in tables if t.startswith("program_code_fts") or t == "code_search_pending"}


def test_the_schema_head_constant_is_alembics_head():
    from alembic.script import ScriptDirectory

    assert dbmod.SCHEMA_HEAD == ScriptDirectory.from_config(dbmod.alembic_config()).get_current_head()
