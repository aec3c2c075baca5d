"""Takedowns: programs or authors that asked to be left out of every crawl and snapshot."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select

from corpus.db import Catalogue
from corpus.errors import UsageProblem
from corpus.models import Exclusion, Program, Source
from corpus.queries import _iso
from corpus.records import author_key, parse_program_key
from corpus.store import utcnow


def add_exclusion(
    catalogue: Catalogue,
    *,
    program: str | None = None,
    author: str | None = None,
    source: str | None = None,
    reason: str,
) -> dict[str, Any]:
    """Record a takedown of one program (``SOURCE:ID``) or of an author (on one source or all)."""
    if bool(program) == bool(author):
        raise UsageProblem(
            "name either one program (SOURCE:ID) or --author NAME", hint="not both, not neither"
        )
    if not reason.strip():
        raise UsageProblem("a takedown needs a reason", hint="pass --reason TEXT (who asked, when)")
    row: dict[str, Any] = {"reason": reason.strip(), "created_at": utcnow(), "source": source}
    if program:
        if source is not None:
            raise UsageProblem("--source goes with --author; a program name already says its source")
        try:
            row["source"], row["external_id"] = parse_program_key(program)
        except ValueError as exc:
            raise UsageProblem(str(exc)) from exc
    else:
        row["author"] = author
        row["author_key"] = author_key(author)
        if row["author_key"] is None:
            raise UsageProblem("--author needs a name", hint="pass the author's name as the source shows it")
    with catalogue.session() as s:
        if program:
            same = select(Exclusion.id).where(
                Exclusion.source == row["source"], Exclusion.external_id == row["external_id"]
            )
        else:
            same = select(Exclusion.id).where(
                Exclusion.external_id.is_(None),
                Exclusion.author_key == row["author_key"],
                Exclusion.source.is_(None) if source is None else Exclusion.source == source,
            )
        already = s.execute(same).first() is not None
        if not already:
            s.execute(insert(Exclusion), row)
        matches = _matching_programs(s, row)
    out = {k: (_iso(v) if k == "created_at" else v) for k, v in row.items()}
    return out | {"already_excluded": already, "programs_in_catalogue": matches}


def _matching_programs(s, row: dict[str, Any]) -> int:
    stmt = select(func.count()).select_from(Program).join(Source, Source.id == Program.source_id)
    if row.get("external_id") is not None:
        stmt = stmt.where(Source.name == row["source"], Program.external_id == row["external_id"])
    else:
        stmt = stmt.where(Program.author_key == row["author_key"])
        if row["source"] is not None:
            stmt = stmt.where(Source.name == row["source"])
    return s.execute(stmt).scalar_one()


def list_exclusions(catalogue: Catalogue) -> list[dict[str, Any]]:
    with catalogue.session() as s:
        return [
            {
                "program": f"{e.source}:{e.external_id}" if e.external_id else None,
                "author": e.author,
                "source": e.source,
                "reason": e.reason,
                "created_at": _iso(e.created_at),
            }
            for e in s.execute(select(Exclusion).order_by(Exclusion.id)).scalars()
        ]
