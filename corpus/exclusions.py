"""Takedowns: programs or authors that asked to be left out of every crawl and snapshot."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select

from corpus.db import Catalogue
from corpus.errors import InputFormatError
from corpus.models import Exclusion
from corpus.queries import _iso
from corpus.records import parse_program_key
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
        raise InputFormatError(
            "name either one program (SOURCE:ID) or --author NAME", hint="not both, not neither"
        )
    if not reason.strip():
        raise InputFormatError("a takedown needs a reason", hint="pass --reason TEXT (who asked, when)")
    row: dict[str, Any] = {"reason": reason.strip(), "created_at": utcnow(), "source": source}
    if program:
        try:
            row["source"], row["external_id"] = parse_program_key(program)
        except ValueError as exc:
            raise InputFormatError(str(exc)) from exc
    else:
        row["author"] = author
    with catalogue.session() as s:
        s.execute(insert(Exclusion), row)
    return {k: (_iso(v) if k == "created_at" else v) for k, v in row.items()}


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
