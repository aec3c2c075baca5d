"""The PostgreSQL half of the tests: where no server can start it is skipped with the reason,
never passed without running."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT
from tests.postgres import PG_BIN_ENV


def test_without_server_binaries_the_postgresql_half_skips_with_the_reason(tmp_path):
    env = os.environ | {PG_BIN_ENV: str(tmp_path / "no-postgres-here")}
    selected = "tests/corpus/test_db.py::test_catalogue_from_a_newer_version_is_refused"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", selected],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed, 1 skipped" in run.stdout, run.stdout
    assert f"PostgreSQL half skipped: no initdb and pg_ctl in {tmp_path / 'no-postgres-here'}" in run.stdout
