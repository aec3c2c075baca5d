"""Code search: FTS5's trigram index on SQLite, ``pg_trgm``'s on PostgreSQL.

Both match a piece of code anywhere in a program's current passes, ignoring case. On SQLite the
index is an FTS5 table kept up to date in bulk (:func:`refresh_code_index`). On PostgreSQL a GIN
trigram index on the code blobs (migration 0006) answers ``ILIKE`` and is kept up to date by
PostgreSQL itself; :func:`code_walk_condition` is the same test without the index and
:func:`code_matches` the index's answer alone, for :mod:`corpus.pg_listing`, which decides when
walking programs beats asking the index.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, delete, exists, func, literal_column, select, text
from sqlalchemy.orm import aliased

from corpus.db import Catalogue
from corpus.errors import CatalogueError, UsageProblem
from corpus.models import Blob, CodeSearchPending, Program, ProgramVersion, RenderPass


def code_condition(needle: str, dialect: str):
    """A condition on ``program``: its current code contains ``needle``, case ignored (the
    trigram index on SQLite and on PostgreSQL)."""
    _check_needle(needle)
    if dialect == "sqlite":
        # The trigram tokenizer matches substrings; quote the needle as one FTS5 string.
        quoted = '"' + needle.replace('"', '""') + '"'
        return Program.id.in_(
            select(literal_column("rowid"))
            .select_from(text("program_code_fts"))
            .where(text("program_code_fts MATCH :q").bindparams(q=quoted))
        )
    version = aliased(ProgramVersion)
    return exists(
        _current_code(version, Program.id, Program.code_sha256)
        .with_only_columns(literal_column("1"))
        .where(Blob.text.icontains(needle, autoescape=True))
    )


def code_walk_condition(needle: str, program_id: ColumnElement, code_sha256: ColumnElement):
    """PostgreSQL: the same test as :func:`code_condition` on one program given by its id and
    current code hash, written so that the planner cannot turn it into a trigram index scan
    (an aggregate subquery is evaluated per row): checking a program costs tens of
    microseconds, however common the needle."""
    _check_needle(needle)
    version = aliased(ProgramVersion)
    matches = _current_code(version, program_id, code_sha256).with_only_columns(
        func.bool_or(Blob.text.icontains(needle, autoescape=True))
    )
    return matches.scalar_subquery().is_(True)


def code_matches(needle: str):
    """PostgreSQL: ``(program_id, code_sha256)`` of every program version whose code contains
    ``needle``, case ignored, found through the trigram index (old versions too: join on both
    columns to keep a program's current code only)."""
    _check_needle(needle)
    return (
        select(ProgramVersion.program_id, ProgramVersion.code_sha256)
        .join(RenderPass, RenderPass.version_id == ProgramVersion.id)
        .join(Blob, Blob.sha256 == RenderPass.code_sha256)
        .where(Blob.text.icontains(needle, autoescape=True))
    )


def _current_code(version, program_id: ColumnElement, code_sha256: ColumnElement):
    """The blobs of a program's current passes, as a select to add columns and conditions to."""
    return (
        select(Blob.sha256)
        .select_from(version)
        .join(RenderPass, RenderPass.version_id == version.id)
        .join(Blob, Blob.sha256 == RenderPass.code_sha256)
        .where(version.program_id == program_id, version.code_sha256 == code_sha256)
    )


def _check_needle(needle: str) -> None:
    if len(needle) < 3:
        raise UsageProblem(
            "code search needs at least 3 characters", hint="search for a longer piece of code"
        )


def refresh_code_index(catalogue: Catalogue, progress=None, chunk: int = 2000) -> int:
    """Bring the code-search index up to date with every program imported or changed since.

    Imports only queue program ids (``code_search_pending``): trigram indexing costs more than
    the rest of an import, so it is done here, in bulk, before a code search or by
    ``corpus index``. Each chunk commits on its own, so an interrupted refresh keeps its work.
    A read-only catalogue is searched as it is. Returns how many programs were indexed.
    """
    if catalogue.dialect != "sqlite":
        return 0  # PostgreSQL keeps its trigram index up to date itself
    done = 0
    try:
        while True:
            with catalogue.session() as s:
                ids = s.execute(select(CodeSearchPending.program_id).limit(chunk)).scalars().all()
                if not ids:
                    return done
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
            done += len(ids)
            if progress is not None:
                progress(len(ids))
    except CatalogueError as exc:
        if "read-only" in exc.message:
            return done
        raise


def pending_code_index(catalogue: Catalogue) -> int:
    with catalogue.session() as s:
        return s.execute(select(func.count()).select_from(CodeSearchPending)).scalar_one()
