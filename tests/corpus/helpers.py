"""What several corpus test modules share (a test module never imports another one's names)."""

from __future__ import annotations

from collections.abc import Sequence

from corpus.db import Catalogue
from corpus.queries import ProgramFilter, list_programs
from corpus.records import ProgramRecord
from corpus.store import BatchResult, ProgramStore

#: The shortest licence header: an SPDX line
MIT = "// SPDX-License-Identifier: MIT\n"


def store(catalogue: Catalogue, records: Sequence[ProgramRecord]) -> BatchResult:
    """Store ``records`` in one batch, as an import would."""
    with catalogue.session() as s:
        return ProgramStore(catalogue).store(records, s.connection())


def program_keys(catalogue: Catalogue, flt: ProgramFilter | None = None, **kw) -> list[str]:
    """``SOURCE:ID`` of every program ``corpus ls`` would list for ``flt``, in its order."""
    return [row["program"] for row in list_programs(catalogue, flt or ProgramFilter(), **kw)]


def db_path(catalogue: Catalogue) -> str:
    """The catalogue's file, as a user passes it to ``--db``."""
    return str(catalogue.url).removeprefix("sqlite:///")


def typed_rows(catalogue: Catalogue) -> dict[str, list[tuple]]:
    """Every row of every model table, comparable across backends: JSON columns as their stored
    text (so a JSON ``null`` differs from SQL NULL), times as naive UTC, rows sorted."""
    from datetime import UTC, datetime

    from sqlalchemy import JSON, Text, cast, select

    from corpus.models import Base

    def plain(value):
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    out: dict[str, list[tuple]] = {}
    with catalogue.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            columns = [cast(c, Text).label(c.name) if isinstance(c.type, JSON) else c for c in table.c]
            rows = conn.execute(select(*columns)).all()
            out[table.name] = sorted((tuple(plain(v) for v in row) for row in rows), key=repr)
    return out
