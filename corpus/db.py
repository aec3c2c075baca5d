"""Opening the catalogue: URLs, SQLite pragmas, schema revisions, and database errors.

Every command takes ``--db PATH_OR_URL`` (env ``IMAGEPROGRAMS_DB``, default ``catalogue.db``).
A path means SQLite, opened with WAL, a busy timeout and foreign keys on; a URL with a scheme
is handed to SQLAlchemy, a plain ``postgresql://`` (or ``postgres://``) going to psycopg 3, the
driver the ``[postgres]`` extra installs. The schema is Alembic's: a new
catalogue is migrated to head on creation, an older one must be upgraded with
``corpus db upgrade``, and one written by a newer imageprograms is refused.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from corpus.errors import CatalogueError
from corpus.pg_errors import postgres_problem

DEFAULT_DB = "catalogue.db"
ENV_DB = "IMAGEPROGRAMS_DB"
BUSY_TIMEOUT_MS = 10_000
CACHE_KIB = 65_536
_MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


#: Schemes a user types for PostgreSQL. SQLAlchemy maps a bare ``postgresql://`` to psycopg2,
#: which imageprograms does not install: both mean psycopg 3 here.
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def resolve_db_url(db: str | None = None) -> str:
    """Turn ``--db`` (or the environment, or the default) into a SQLAlchemy URL."""
    value = db or os.environ.get(ENV_DB) or DEFAULT_DB
    if value.startswith(_POSTGRES_SCHEMES):
        return "postgresql+psycopg://" + value.split("://", 1)[1]
    if "://" in value:
        return value
    if value.startswith("file:"):  # a SQLite URI such as file:cat.db?mode=ro
        return f"sqlite:///{value}{'&' if '?' in value else '?'}uri=true"
    return f"sqlite:///{Path(value).expanduser().resolve()}"


def masked_url(url: str) -> str:
    """``url`` with its password (if any) shown as ``***``, fit to print."""
    try:  # unquoted again: ?host=/run/postgresql reads better than ?host=%2Frun%2Fpostgresql
        return unquote(make_url(url).render_as_string(hide_password=True))
    except Exception:  # not a URL SQLAlchemy can parse: nothing to hide in it
        return url


def display_url(url: str) -> str:
    """The catalogue as messages name it: a SQLite file's path, a server URL without its password."""
    path = _sqlite_path(url)
    return str(path) if path is not None else masked_url(url)


def sqlite_file(db: str | None) -> Path | None:
    """The SQLite file that ``--db`` names, or None (a server's URL, a ``file:`` URI)."""
    return _sqlite_path(resolve_db_url(db))


def _sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite:///") or "uri=true" in url:
        return None
    return Path(url[len("sqlite:///") :])


def _on_sqlite_connect(dbapi_connection, _record) -> None:
    cur = dbapi_connection.cursor()
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    # 64 MiB of page cache instead of SQLite's 2 MiB: imports insert into several indexes keyed by
    # random hashes, which otherwise thrash the cache once the catalogue outgrows it.
    cur.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    cur.execute("PRAGMA temp_store=MEMORY")
    try:
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
    except Exception:  # a read-only database cannot switch journal mode; reading still works
        pass
    cur.close()


#: The newest migration, kept here so that opening a catalogue does not import Alembic (half a
#: second of every command's start-up); a test checks it against Alembic's own head.
SCHEMA_HEAD = "0007_leases"


def alembic_config():
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def head_revision() -> str:
    return SCHEMA_HEAD


class Catalogue:
    """An open catalogue: an engine plus a session factory, checked against the schema head."""

    def __init__(self, url: str, engine: Engine) -> None:
        self.url = url
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed at the end, rolled back on any error."""
        with translate_db_errors(self.url):
            with self._sessions() as session, session.begin():
                yield session

    def current_revision(self) -> str | None:
        with translate_db_errors(self.url), self.engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()

    def close(self) -> None:
        self.engine.dispose()


@contextlib.contextmanager
def write_transaction(catalogue: Catalogue) -> Iterator[Session]:
    """A session whose transaction takes the write lock first (``BEGIN IMMEDIATE`` on SQLite), so
    a read-then-write (a claim, a host slot) waits its turn for the lock instead of failing on one
    it would have to upgrade; on PostgreSQL an ordinary transaction, whose row locks do that."""
    with catalogue.session() as s:
        if catalogue.dialect == "sqlite":
            s.connection().exec_driver_sql("BEGIN IMMEDIATE")
        yield s


def lease_holder() -> str:
    """Who holds a lease on queued work (a validation job, a crawl request): host, process and
    a random part, so a restarted process is someone new."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def lease_holder_is_gone(holder: str | None) -> bool:
    """Whether the holder of a lease is known to be dead: none at all (work leased before
    holders were recorded), or a process of this machine that no longer runs. Holders on other
    machines are left to their leases' expiry."""
    if holder is None:
        return True
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname()[:40] or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def claim_need_not_be_durable(s: Session) -> None:
    """On PostgreSQL, let this transaction's commit return before its WAL reaches the disk (a
    few milliseconds of a claim's ten). Only for claims: one lost in a server crash is claimed
    again, and a result is stored only by the holder the database remembers, so nothing is
    stored twice; results, and what a crawl marks done, stay durable."""
    if s.get_bind().dialect.name == "postgresql":
        s.connection().exec_driver_sql("SET LOCAL synchronous_commit TO OFF")


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _on_sqlite_connect)
        return engine
    try:
        return create_engine(url, pool_pre_ping=True)
    except ModuleNotFoundError as exc:
        if url.startswith("postgresql"):
            raise CatalogueError(
                f"PostgreSQL's driver ({exc.name}) is not installed, so {masked_url(url)} cannot be opened",
                hint="install it: pip install -e '.[postgres]' (or pip install 'psycopg[binary]')",
            ) from exc
        raise CatalogueError(
            f"the database driver for {url.split(':', 1)[0]} is not installed ({exc.name})",
            hint="install the driver SQLAlchemy names for this URL",
        ) from exc
    except Exception as exc:  # a malformed URL
        raise CatalogueError(
            f"cannot use the database URL {masked_url(url)!r}: {exc}", hint="check --db"
        ) from exc


def connect(db: str | None = None, *, must_exist: bool = True) -> Catalogue:
    """An unchecked connection (for ``corpus db``): no revision check, no migration."""
    url = resolve_db_url(db)
    path = _sqlite_path(url)
    if must_exist and path is not None and not path.exists():
        raise CatalogueError(
            f"no catalogue at {path}", hint="pass --db PATH, or create one: corpus db upgrade"
        )
    return Catalogue(url, _make_engine(url))


def open_catalogue(db: str | None = None, *, create: bool = False) -> Catalogue:
    """Open the catalogue named by ``db``.

    ``create=True`` (importers, crawlers) makes a new catalogue at head when none exists;
    otherwise a missing SQLite file is an error that says how to make one. Either way the schema
    revision must be this version's head.
    """
    url = resolve_db_url(db)
    path = _sqlite_path(url)
    if path is not None and not path.exists():
        if not create:
            via_env = f" ({ENV_DB} names it)" if not db and os.environ.get(ENV_DB) else ""
            raise CatalogueError(
                f"no catalogue at {path}{via_env}",
                hint="import something first (harvest import examples/…) or pass --db PATH",
            )
        if not path.parent.exists():
            raise CatalogueError(f"the folder {path.parent} does not exist", hint="create it or pass --db")
    catalogue = Catalogue(url, _make_engine(url))
    head = head_revision()
    current = catalogue.current_revision()
    if current is None and create:
        upgrade(catalogue)
    elif current != head:
        check_revision(current)
        raise CatalogueError(
            f"the catalogue is at schema revision {current}, this imageprograms needs {head}",
            hint=f"run: corpus db upgrade --db {db or os.environ.get(ENV_DB) or DEFAULT_DB}",
        )
    return catalogue


def check_revision(current: str | None) -> None:
    """Refuse a catalogue whose revision this installed version does not know (a newer one)."""
    if current is None:
        raise CatalogueError(
            "this database holds no imageprograms catalogue", hint="run: corpus db upgrade to create one"
        )
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    try:
        script.get_revision(current)
    except Exception as exc:
        raise CatalogueError(
            f"the catalogue was written by a newer imageprograms (schema revision {current})",
            hint="upgrade imageprograms (pip install -U imageprograms) before using this catalogue",
        ) from exc


def upgrade(catalogue: Catalogue, revision: str = "head") -> tuple[str | None, str]:
    """Migrate the catalogue to ``revision``; returns (from, to)."""
    before = catalogue.current_revision()
    if before is not None:
        check_revision(before)
    from alembic import command

    cfg = alembic_config()
    with translate_db_errors(catalogue.url), catalogue.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return before, catalogue.current_revision() or "base"


def downgrade(catalogue: Catalogue, revision: str) -> None:
    from alembic import command

    cfg = alembic_config()
    with translate_db_errors(catalogue.url), catalogue.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


#: Tables whose statistics guide ``corpus ls``. Not the code-search index's shadow tables nor its
#: queue: their statistics, taken while they were small or about to be emptied, made FTS5's own
#: statements choose scans and slowed an index refresh tenfold (4 s became 46 s for 5,000
#: programs in a 100k catalogue).
_PLANNER_TABLES = (
    "source",
    "program",
    "program_version",
    "pass",
    "blob",
    "licence",
    "provenance",
    "exclusion",
    "snapshot",
    "snapshot_entry",
)


def refresh_statistics(catalogue: Catalogue) -> None:
    """Refresh the query planner's statistics after a bulk change (SQLite).

    Without them SQLite guesses, and picks a scan over a better index: ``corpus ls --author X``
    on 100k programs takes 60 ms instead of 4. ``analysis_limit`` samples each index, so this
    costs milliseconds, not a pass over the catalogue.
    """
    if catalogue.dialect != "sqlite":
        return
    with translate_db_errors(catalogue.url), catalogue.engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA analysis_limit=1000")
        for table in _PLANNER_TABLES:
            conn.exec_driver_sql(f"ANALYZE {table}")


@contextlib.contextmanager
def translate_db_errors(url: str) -> Iterator[None]:
    """Turn the database failures a user can meet into :class:`CatalogueError` with a next step."""
    try:
        yield
    except (OperationalError, DBAPIError) as exc:
        text = str(exc.orig if getattr(exc, "orig", None) is not None else exc).lower()
        where = display_url(url)
        if url.startswith("postgresql"):
            lost = bool(getattr(exc, "connection_invalidated", False))
            problem = postgres_problem(text, url, where, lost=lost)
            if problem is not None:
                raise problem from exc
        if "locked" in text or "busy" in text:
            raise CatalogueError(
                f"the catalogue {where} is locked by another process",
                hint="wait for the other import or crawl to finish, then run this again",
            ) from exc
        if "readonly" in text or "read-only" in text:
            raise CatalogueError(
                f"the catalogue {where} is read-only; nothing was written",
                hint="use a writable copy, or pass --db with a path you can write",
            ) from exc
        if "full" in text or "no space" in text or "disk i/o error" in text:
            raise CatalogueError(
                f"writing to {where} failed: the disk is full (or a file-size limit or a failing disk);"
                " the batch in progress was rolled back",
                hint="free some space and run the same command again: it resumes where it stopped",
            ) from exc
        if "unable to open" in text:
            raise CatalogueError(
                f"cannot open the catalogue {where}", hint="check the path and permissions"
            ) from exc
        if "malformed" in text or "not a database" in text:
            raise CatalogueError(
                f"{where} is not a readable SQLite catalogue", hint="pass --db with the right file"
            ) from exc
        raise
