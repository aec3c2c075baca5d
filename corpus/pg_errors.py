"""What a PostgreSQL failure means for the user, in one line and a next step.

:func:`corpus.db.translate_db_errors` asks :func:`postgres_problem` first about a database
error on a PostgreSQL catalogue: a server that cannot be reached, a wrong password, a missing
database, a lost connection, a missing privilege or extension. Anything it does not recognise
stays the caller's to translate (or to show as the bug it is).
"""

from __future__ import annotations

import re

from sqlalchemy.engine import make_url

from corpus.errors import CatalogueError

_UNREACHABLE = (
    "connection refused",
    "is the server running",
    "could not connect",
    "failed to resolve host",
    "could not translate host name",
    "no route to host",
    "timeout expired",
    "network is unreachable",
)
_LOST = (
    "terminating connection",
    "server closed the connection",
    "connection is closed",
    "connection is lost",
    "consuming input failed",
    "ssl syscall error",
    "could not receive data from server",
    "connection not open",
)


def postgres_problem(text: str, url: str, where: str, *, lost: bool = False) -> CatalogueError | None:
    """The :class:`CatalogueError` for a PostgreSQL error message ``text`` (lower case) on the
    catalogue at ``url`` (``where``: the URL as messages show it), or None when unknown.
    ``lost``: SQLAlchemy found the connection unusable."""
    parts = make_url(url)
    user, database = parts.username or "(your login name)", parts.database or "?"
    if "password authentication failed" in text or "no password supplied" in text:
        return CatalogueError(
            f"the database server refused the password of user {user} ({where})",
            hint="check the user and password in --db, or in PGPASSWORD or ~/.pgpass",
        )
    if re.search(r'role "[^"]*" does not exist', text):
        return CatalogueError(
            f"the database server has no user {user} ({where})",
            hint="name an existing user in --db, or create one: createuser USER",
        )
    if re.search(r'database "[^"]*" does not exist', text):
        return CatalogueError(
            f"there is no database {database} on the server ({where})",
            hint=f"create it first (createdb {database}); the first import or corpus db upgrade fills it",
        )
    if any(sign in text for sign in _LOST) or lost:
        return CatalogueError(
            f"the connection to the database server was lost ({where});"
            " the batch in progress was rolled back",
            hint="run the same command again when the server is back: it resumes where it stopped",
        )
    if any(sign in text for sign in _UNREACHABLE):
        return CatalogueError(
            f"cannot connect to the database server for {where}: {_first_line(text)}",
            hint="check that PostgreSQL runs there and that --db names the right host and port",
        )
    if "pg_trgm" in text and ("not available" in text or "could not open extension control file" in text):
        return CatalogueError(
            f"the database server for {where} lacks the pg_trgm extension, which code search needs",
            hint="install the server's contrib package (Debian: postgresql-contrib), then corpus db upgrade",
        )
    if "permission denied" in text or "must be owner" in text:
        return CatalogueError(
            f"the database user {user} may not do this on {where}: {_first_line(text)}",
            hint="connect as the database's owner, or ask the owner to grant the privileges",
        )
    if "read-only transaction" in text:
        return CatalogueError(
            f"the catalogue {where} is read-only (a standby, or a read-only user); nothing was written",
            hint="point --db at the primary server, or at a user that may write",
        )
    if "cannot contain nul" in text or ("invalid byte sequence" in text and "0x00" in text):
        return CatalogueError(
            f"a record holds a NUL character, which PostgreSQL cannot store ({where});"
            " the batch in progress was rolled back",
            hint="remove NUL characters from the input (GLSL has none), then run the same command again",
        )
    return None


def _first_line(text: str) -> str:
    """The gist of a driver message: its first line, without libpq's connection preamble."""
    line = text.strip().splitlines()[0] if text.strip() else text
    return re.sub(r"^.*failed: ", "", line, count=1)
