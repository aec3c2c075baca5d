"""Takedowns: programs or authors that asked to be left out of every crawl and snapshot.

A takedown is added by naming one program (``SOURCE:ID``) or an author (on one source or all),
and removed by naming it the same way; authors are matched by their normalised key
(:func:`corpus.records.author_key`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, insert, select

from corpus.db import Catalogue
from corpus.errors import NotFoundError, UsageProblem
from corpus.models import Exclusion, Program, Source
from corpus.records import author_key, parse_program_key
from corpus.store import utcnow
from corpus.times import iso_utc


def add_exclusion(
    catalogue: Catalogue,
    *,
    program: str | None = None,
    author: str | None = None,
    source: str | None = None,
    reason: str,
) -> dict[str, Any]:
    """Record a takedown of one program (``SOURCE:ID``) or of an author (on one source or all)."""
    row = _named(program, author, source)
    if not reason.strip():
        raise UsageProblem("a takedown needs a reason", hint="pass --reason TEXT (who asked, when)")
    row |= {"reason": reason.strip(), "created_at": utcnow()}
    with catalogue.session() as s:
        already = s.execute(select(Exclusion.id).where(_same(row))).first() is not None
        if not already:
            s.execute(insert(Exclusion), row)
        matches = _matching_programs(s, row)
    out = {k: (iso_utc(v) if k == "created_at" else v) for k, v in row.items()}
    return out | {"already_excluded": already, "programs_in_catalogue": matches}


def remove_exclusion(
    catalogue: Catalogue, *, program: str | None = None, author: str | None = None, source: str | None = None
) -> dict[str, Any]:
    """Undo a takedown, named as it was added: one program (``SOURCE:ID``) or an author (with the
    same ``source``, or none). Programs it kept out of imports and crawls are not in the catalogue:
    they come back with the next import or crawl that meets them."""
    row = _named(program, author, source)
    with catalogue.session() as s:
        found = s.execute(select(Exclusion).where(_same(row))).scalars().first()
        if found is None:
            who = program or f"author {author}" + (f" on {source}" if source else "")
            raise NotFoundError(f"no takedown of {who}", hint="list them with: corpus exclusions")
        removed = _json(found)
        s.execute(delete(Exclusion).where(Exclusion.id == found.id))
        matches = _matching_programs(s, row)
    return removed | {"programs_in_catalogue": matches}


def _named(program: str | None, author: str | None, source: str | None) -> dict[str, Any]:
    """The columns that name a takedown: a program's source and id, or an author (and source)."""
    if bool(program) == bool(author):
        raise UsageProblem(
            "name either one program (SOURCE:ID) or --author NAME", hint="not both, not neither"
        )
    if program:
        if source is not None:
            raise UsageProblem("--source goes with --author; a program name already says its source")
        try:
            source, external_id = parse_program_key(program)
        except ValueError as exc:
            raise UsageProblem(str(exc)) from exc
        return {"source": source, "external_id": external_id}
    key = author_key(author)
    if key is None:
        raise UsageProblem("--author needs a name", hint="pass the author's name as the source shows it")
    return {"source": source, "author": author, "author_key": key}


def _same(row: dict[str, Any]):
    """The condition that finds the takedown ``row`` names."""
    if row.get("external_id") is not None:
        return (Exclusion.source == row["source"]) & (Exclusion.external_id == row["external_id"])
    return (
        Exclusion.external_id.is_(None)
        & (Exclusion.author_key == row["author_key"])
        & (Exclusion.source.is_(None) if row["source"] is None else Exclusion.source == row["source"])
    )


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
        return [_json(e) for e in s.execute(select(Exclusion).order_by(Exclusion.id)).scalars()]


def _json(e: Exclusion) -> dict[str, Any]:
    return {
        "program": f"{e.source}:{e.external_id}" if e.external_id else None,
        "author": e.author,
        "source": e.source,
        "reason": e.reason,
        "created_at": iso_utc(e.created_at),
    }
