"""Code search: a trigram index, FTS5's on SQLite and ``pg_trgm``'s on PostgreSQL.

Both match a piece of code anywhere in a program's current passes, ignoring case, and both are
brought up to date in bulk: imports only queue the programs they add or change
(``code_search_pending``), because trigram indexing costs more than the rest of an import, and
:func:`refresh_code_index` catches the index up before a code search or on ``corpus index``. On
SQLite the index is the FTS5 table ``program_code_fts``; on PostgreSQL the table
``program_code`` (each program's current code) under a GIN trigram index (migration 0006).
:func:`code_walk_condition` is PostgreSQL's test without the index and :func:`code_matches` the
index's answer alone, for :mod:`corpus.pg_listing`, which decides when walking programs beats
asking the index.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Integer, Text, column, delete, func, literal_column, select, table, text

from corpus.db import Catalogue
from corpus.errors import CatalogueError, UsageProblem
from corpus.models import CodeSearchPending, Program

#: PostgreSQL's code-search table (migration 0006), outside the models like SQLite's FTS5 table:
#: neither is copied between catalogues, each is rebuilt from ``code_search_pending``.
program_code = table("program_code", column("program_id", Integer), column("code", Text))


def code_condition(needle: str, dialect: str):
    """A condition on ``program``: its current code contains ``needle``, case ignored (answered
    by the trigram index)."""
    _check_needle(needle)
    if dialect == "sqlite":
        # The trigram tokenizer matches substrings; quote the needle as one FTS5 string.
        quoted = '"' + needle.replace('"', '""') + '"'
        return Program.id.in_(
            select(literal_column("rowid"))
            .select_from(text("program_code_fts"))
            .where(text("program_code_fts MATCH :q").bindparams(q=quoted))
        )
    return Program.id.in_(code_matches(needle))


def code_matches(needle: str):
    """PostgreSQL: the ids of the programs whose current code contains ``needle``, from the
    trigram index."""
    _check_needle(needle)
    return select(program_code.c.program_id).where(program_code.c.code.icontains(needle, autoescape=True))


def code_walk_condition(needle: str, program_id: ColumnElement):
    """PostgreSQL: the same test on one program, looked up by its id, written so that the planner
    cannot turn it into a trigram index scan: tens of microseconds a program, however common
    the needle."""
    _check_needle(needle)
    code = select(program_code.c.code).where(program_code.c.program_id == program_id).scalar_subquery()
    return code.icontains(needle, autoescape=True)


def _check_needle(needle: str) -> None:
    if len(needle) < 3:
        raise UsageProblem(
            "code search needs at least 3 characters", hint="search for a longer piece of code"
        )


def refresh_code_index(catalogue: Catalogue, progress=None, chunk: int = 2000) -> int:
    """Bring the code-search index up to date with every program imported or changed since.

    Each chunk commits on its own, so an interrupted refresh keeps its work; on PostgreSQL
    several processes share the queue (each takes chunks the others do not hold). A catalogue
    that may not be written is searched as it is. Returns how many programs were indexed.
    """
    refresh_chunk = _refresh_sqlite_chunk if catalogue.dialect == "sqlite" else _refresh_postgres_chunk
    done = 0
    try:
        while True:
            with catalogue.session() as s:
                n = refresh_chunk(s, chunk)
            if not n:
                return done
            done += n
            if progress is not None:
                progress(n)
    except CatalogueError as exc:
        if "read-only" in exc.message or " may not do this " in exc.message:
            return done
        raise


def _refresh_sqlite_chunk(s, chunk: int) -> int:
    ids = s.execute(select(CodeSearchPending.program_id).limit(chunk)).scalars().all()
    if not ids:
        return 0
    params = {f"p{i}": pid for i, pid in enumerate(ids)}
    in_list = ", ".join(f":p{i}" for i in range(len(ids)))
    s.execute(text(f"DELETE FROM program_code_fts WHERE rowid IN ({in_list})"), params)
    s.execute(
        text(
            "INSERT INTO program_code_fts(rowid, code) "
            "SELECT p.id, (SELECT group_concat(t, char(10)) FROM ("
            "  SELECT b.text AS t FROM program_version v"
            "  JOIN pass ps ON ps.version_id = v.id JOIN blob b ON b.sha256 = ps.code_sha256"
            "  WHERE v.program_id = p.id AND v.code_sha256 = p.code_sha256 ORDER BY ps.position))"
            f" FROM program p WHERE p.id IN ({in_list})"
        ),
        params,
    )
    s.execute(delete(CodeSearchPending).where(CodeSearchPending.program_id.in_(ids)))
    return len(ids)


def _refresh_postgres_chunk(s, chunk: int) -> int:
    # SKIP LOCKED: a chunk another process is indexing is left to it
    ids = (
        s.execute(
            select(CodeSearchPending.program_id)
            .order_by(CodeSearchPending.program_id)
            .limit(chunk)
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    if not ids:
        return 0
    s.execute(text("DELETE FROM program_code WHERE program_id = ANY(:ids)"), {"ids": ids})
    s.execute(
        text(
            "INSERT INTO program_code (program_id, code)"
            " SELECT p.id, string_agg(b.text, E'\\n' ORDER BY ps.position) FROM program p"
            " JOIN program_version v ON v.program_id = p.id AND v.code_sha256 = p.code_sha256"
            " JOIN pass ps ON ps.version_id = v.id JOIN blob b ON b.sha256 = ps.code_sha256"
            " WHERE p.id = ANY(:ids) GROUP BY p.id"
        ),
        {"ids": ids},
    )
    s.execute(delete(CodeSearchPending).where(CodeSearchPending.program_id.in_(ids)))
    return len(ids)


def pending_code_index(catalogue: Catalogue) -> int:
    with catalogue.session() as s:
        return s.execute(select(func.count()).select_from(CodeSearchPending)).scalar_one()
