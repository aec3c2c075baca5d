"""Code search: the trigram index on SQLite (kept up to date in bulk), LIKE over the code elsewhere."""

from __future__ import annotations

from sqlalchemy import delete, exists, func, literal_column, select, text
from sqlalchemy.orm import aliased

from corpus.db import Catalogue
from corpus.errors import CatalogueError, UsageProblem
from corpus.models import Blob, CodeSearchPending, Program, ProgramVersion, RenderPass


def code_condition(needle: str, dialect: str):
    """A condition on ``program``: its current code contains ``needle`` (the trigram index on
    SQLite, LIKE over the code elsewhere)."""
    if dialect == "sqlite" and len(needle) >= 3:
        # The trigram tokenizer matches substrings; quote the needle as one FTS5 string.
        quoted = '"' + needle.replace('"', '""') + '"'
        return Program.id.in_(
            select(literal_column("rowid"))
            .select_from(text("program_code_fts"))
            .where(text("program_code_fts MATCH :q").bindparams(q=quoted))
        )
    if len(needle) < 3:
        raise UsageProblem(
            "code search needs at least 3 characters", hint="search for a longer piece of code"
        )
    version = aliased(ProgramVersion)
    return exists(
        select(literal_column("1"))
        .select_from(version)
        .join(RenderPass, RenderPass.version_id == version.id)
        .join(Blob, Blob.sha256 == RenderPass.code_sha256)
        .where(
            version.program_id == Program.id,
            version.code_sha256 == Program.code_sha256,
            Blob.text.contains(needle, autoescape=True),
        )
    )


def refresh_code_index(catalogue: Catalogue, progress=None, chunk: int = 2000) -> int:
    """Bring the code-search index up to date with every program imported or changed since.

    Imports only queue program ids (``code_search_pending``): trigram indexing costs more than
    the rest of an import, so it is done here, in bulk, before a code search or by
    ``corpus index``. Each chunk commits on its own, so an interrupted refresh keeps its work.
    A read-only catalogue is searched as it is. Returns how many programs were indexed.
    """
    if catalogue.dialect != "sqlite":
        return 0  # other databases search the blobs directly
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
