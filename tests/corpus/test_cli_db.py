"""corpus db upgrade / info, and refusing a catalogue from a newer version, through the CLI."""

from __future__ import annotations

import json
import sqlite3

import corpus.cli
from corpus import db as dbmod
from corpus.cliutils import run_app


def test_db_upgrade_creates_then_reports_already_at_head(empty_database, capsys):
    db = empty_database
    assert run_app(corpus.cli.app, "corpus", ["db", "upgrade", "--db", db, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"from": None, "to": dbmod.head_revision()}
    assert run_app(corpus.cli.app, "corpus", ["db", "upgrade", "--db", db]) == 0
    assert capsys.readouterr().out.strip() == f"already at {dbmod.head_revision()}"
    assert run_app(corpus.cli.app, "corpus", ["db", "info", "--db", db, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["revision"] == dbmod.head_revision()


def test_db_upgrade_refuses_a_newer_catalogue_in_one_clear_error(tmp_path, capsys):
    db = str(tmp_path / "new.db")
    run_app(corpus.cli.app, "corpus", ["db", "upgrade", "--db", db])
    con = sqlite3.connect(db)
    con.execute("UPDATE alembic_version SET version_num = '0099_future'")
    con.commit()
    con.close()
    capsys.readouterr()
    assert run_app(corpus.cli.app, "corpus", ["db", "upgrade", "--db", db]) == 3
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "error: the catalogue was written by a newer imageprograms (schema revision 0099_future)"
    assert err[1].startswith("hint: upgrade imageprograms")
    assert run_app(corpus.cli.app, "corpus", ["ls", "--db", db]) == 3


def test_db_info_on_a_missing_file_creates_nothing(tmp_path, capsys):
    db = tmp_path / "missing.db"
    assert run_app(corpus.cli.app, "corpus", ["db", "info", "--db", str(db)]) == 3
    assert not db.exists()
