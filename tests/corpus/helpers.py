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
