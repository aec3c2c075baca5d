"""A throwaway PostgreSQL cluster for the tests: ``initdb`` into a temp folder, a Unix socket there.

The tests that run on both backends get a fresh database per test, cloned from a template that
was migrated to head once (``CREATE DATABASE … TEMPLATE``: tens of milliseconds, where running the
migrations costs a second). PostgreSQL refuses to run as root, and CI runs as root: there the
server runs as the ``postgres`` user that Debian's package creates (``runuser``). Where no server
binaries or no such user exist, :func:`start_cluster` raises :class:`ClusterUnavailable` with the
reason, which the fixtures turn into a skip that says it.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

TEMPLATE = "catalogue_template"


class ClusterUnavailable(Exception):
    """PostgreSQL cannot be started here; the message says why."""


#: Names the folder of the server binaries (initdb, pg_ctl) instead of PATH and Debian's layout;
#: a folder without them makes every PostgreSQL half skip (tests check that it skips, not passes).
PG_BIN_ENV = "IMAGEPROGRAMS_PG_BIN"


def _pg_bin() -> Path:
    if PG_BIN_ENV in os.environ:
        folder = Path(os.environ[PG_BIN_ENV])
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
        raise ClusterUnavailable(f"no initdb and pg_ctl in {folder} ({PG_BIN_ENV})")
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if versions:
        return Path(versions[-1]).parent
    raise ClusterUnavailable("no PostgreSQL server binaries (initdb, pg_ctl): run scripts/setup.sh")


#: Server settings of a test cluster: a throwaway cluster need not survive a power cut, and
#: without fsync creating databases is fast.
FAST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
}


class Cluster:
    """A running throwaway cluster; :meth:`stop` removes it. ``settings`` override
    :data:`FAST_SETTINGS` (a benchmark turns fsync back on); ``parent`` is where its folder goes."""

    def __init__(self, settings: dict[str, str] | None = None, parent: str | None = None) -> None:
        self.settings = FAST_SETTINGS | (settings or {})
        self.bin = _pg_bin()
        self._as: list[str] = []
        owner = None
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise ClusterUnavailable("running as root and there is no postgres user") from exc
            if not shutil.which("runuser"):
                raise ClusterUnavailable("running as root without runuser to drop to postgres")
            self._as = ["runuser", "-u", "postgres", "--"]
        self.root = Path(tempfile.mkdtemp(prefix="imageprograms-pg-", dir=parent))
        if owner is not None:
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self.data = self.root / "data"
        self.socket_dir = str(self.root)
        self.user = "postgres"
        self._names = itertools.count()
        self._start()

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*self._as, *args], capture_output=True, text=True, timeout=120)

    def _start(self) -> None:
        init = self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            self.user,
            "-E",
            "UTF8",
            "--no-sync",
        )
        if init.returncode != 0:
            self.stop()
            raise ClusterUnavailable(f"initdb failed: {init.stderr.strip()[-300:]}")
        options = f"-k {self.socket_dir} -c listen_addresses=''" + "".join(
            f" -c {name}={value}" for name, value in self.settings.items()
        )
        start = self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        if start.returncode != 0:
            log = (
                (self.root / "log").read_text(errors="replace")[-300:] if (self.root / "log").exists() else ""
            )
            self.stop()
            raise ClusterUnavailable(f"pg_ctl start failed: {start.stderr.strip()[-200:]} {log}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@/{database}?host={self.socket_dir}"

    def execute(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE need that)."""
        import psycopg

        with psycopg.connect(
            host=self.socket_dir, user=self.user, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(sql)

    def new_database(self, template: str | None = None) -> str:
        """A new empty database (or a copy of ``template``); returns its name."""
        name = f"t{os.getpid()}_{next(self._names)}"
        self.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return name

    def add_password_user(self, user: str, password: str) -> None:
        """A user who must give ``password`` (every other user keeps ``trust``)."""
        self.execute(f"CREATE ROLE \"{user}\" LOGIN PASSWORD '{password}'")
        hba = self.data / "pg_hba.conf"
        hba.write_text(f"local all {user} scram-sha-256\n" + hba.read_text())  # the first match wins
        self.execute("SELECT pg_reload_conf()")

    def drop_database(self, name: str) -> None:
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self.data.exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
