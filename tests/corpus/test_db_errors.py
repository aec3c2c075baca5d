"""A PostgreSQL catalogue that cannot be used says why in one line, with a hint and exit code 3."""

from __future__ import annotations

import json
import sys

import pytest
from sqlalchemy import text

import corpus.cli
import harvest.cli
from corpus.cliutils import run_app
from corpus.db import open_catalogue
from corpus.errors import CatalogueError
from corpus.store import ProgramStore
from tests.conftest import EXAMPLES, GRADIENT, make_record
from tests.corpus.helpers import store, typed_rows
from tests.postgres import TEMPLATE


def _fails_in_one_clear_line(app, name: str, args: list[str], capsys) -> tuple[str, str]:
    capsys.readouterr()
    code = run_app(app, name, args)
    err = capsys.readouterr().err.splitlines()
    assert code == 3, err
    assert len(err) == 2 and err[0].startswith("error: ") and err[1].startswith("hint: "), err
    return err[0], err[1]


def _ls(db: str, capsys) -> tuple[str, str]:
    return _fails_in_one_clear_line(corpus.cli.app, "corpus", ["ls", "--db", db], capsys)


def test_a_postgresql_url_without_the_driver_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the [postgres] extra were not installed
    error, hint = _ls("postgresql://me:secret@dbhost/catalogue", capsys)
    assert error == (
        "error: PostgreSQL's driver (psycopg) is not installed,"
        " so postgresql+psycopg://me:***@dbhost/catalogue cannot be opened"
    )
    assert hint == "hint: install it: pip install -e '.[postgres]' (or pip install 'psycopg[binary]')"


@pytest.mark.parametrize(
    ("db", "reason"),
    [
        ("postgresql://me@127.0.0.1:1/catalogue", "connection refused"),
        ("postgresql://me@/catalogue?host=/nonexistent/socket-folder", "no such file or directory"),
    ],
)
def test_a_server_that_cannot_be_reached_is_named_with_the_reason(db, reason, capsys):
    error, hint = _ls(db, capsys)
    assert error.startswith("error: cannot connect to the database server for postgresql+psycopg://me@")
    assert error.endswith(f": {reason}")
    assert hint == "hint: check that PostgreSQL runs there and that --db names the right host and port"


def test_a_wrong_password_and_a_missing_database_each_say_so(pg_cluster, capsys):
    pg_cluster.add_password_user("pw_user", "right")
    name = pg_cluster.new_database(template=TEMPLATE)
    try:
        url = f"postgresql://pw_user:wrong@/{name}?host={pg_cluster.socket_dir}"
        error, hint = _ls(url, capsys)
        assert error == (
            f"error: the database server refused the password of user pw_user"
            f" (postgresql+psycopg://pw_user:***@/{name}?host={pg_cluster.socket_dir})"
        )
        assert hint == "hint: check the user and password in --db, or in PGPASSWORD or ~/.pgpass"
        error, hint = _ls(f"postgresql://postgres@/no_such_catalogue?host={pg_cluster.socket_dir}", capsys)
        assert error.startswith("error: there is no database no_such_catalogue on the server")
        assert hint.startswith("hint: create it first (createdb no_such_catalogue)")
    finally:
        pg_cluster.drop_database(name)


@pytest.mark.parametrize("catalogue", ["postgresql"], indirect=True)
def test_a_catalogue_from_a_newer_version_is_refused_on_postgresql_too(catalogue, capsys):
    with catalogue.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))
    error, hint = _ls(catalogue.url, capsys)
    assert error == "error: the catalogue was written by a newer imageprograms (schema revision 0099_future)"
    assert hint.startswith("hint: upgrade imageprograms")


@pytest.mark.parametrize("catalogue", ["postgresql"], indirect=True)
def test_a_nul_character_is_refused_with_the_batch_rolled_back(catalogue):
    store(catalogue, [make_record("before")])
    with pytest.raises(CatalogueError, match="NUL character") as err:
        store(catalogue, [make_record("nul", GRADIENT + "// \x00\n"), make_record("same_batch")])
    assert "run the same command again" in err.value.hint
    assert [row[2] for row in typed_rows(catalogue)["program"]] == ["before"]


def test_a_connection_lost_mid_batch_rolls_it_back_and_the_import_runs_again(
    pg_cluster, tmp_path, monkeypatch, capsys
):
    name = pg_cluster.new_database(template=TEMPLATE)
    db = pg_cluster.url(name)
    dump = str(EXAMPLES / "shadertoys.jsonl")
    store_batch = ProgramStore.store
    batches = []

    def store_then_lose_the_connection(self, records, conn):
        result = store_batch(self, records, conn)
        batches.append(len(records))
        if len(batches) == 2:  # the second batch is written but not committed: end its session
            backend = conn.connection.dbapi_connection.info.backend_pid
            pg_cluster.execute(f"SELECT pg_terminate_backend({backend})")
        return result

    try:
        monkeypatch.setattr(ProgramStore, "store", store_then_lose_the_connection)
        args = ["import", dump, "--db", db, "--batch-size", "4", "--json"]
        error, hint = _fails_in_one_clear_line(harvest.cli.app, "harvest", args, capsys)
        assert error.startswith("error: the connection to the database server was lost")
        assert error.endswith("the batch in progress was rolled back")
        assert hint.startswith("hint: run the same command again")
        partly = open_catalogue(db)
        assert len(typed_rows(partly)["program"]) == batches[0]  # the first batch only
        partly.close()

        monkeypatch.undo()
        capsys.readouterr()
        assert run_app(harvest.cli.app, "harvest", args) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["resumed_from"] == 4
        clean = str(tmp_path / "clean.db")
        assert run_app(harvest.cli.app, "harvest", ["import", dump, "--db", clean]) == 0
        resumed, reference = typed_rows(open_catalogue(db)), typed_rows(open_catalogue(clean))
        for table in ("program", "program_version", "pass", "blob", "licence", "provenance"):
            assert len(resumed[table]) == len(reference[table]), table
        keys = {(row[2], row[15]) for row in resumed["program"]}  # (external id, code hash)
        assert keys == {(row[2], row[15]) for row in reference["program"]}
    finally:
        pg_cluster.drop_database(name)
