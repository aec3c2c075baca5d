"""The catalogue-wide near-duplicate pass (``corpus dedup``).

Reads every program that is not an exact duplicate, earliest first, hands their current code to
:func:`corpus.dedup.find_near_duplicates` (bulk MinHash + LSH), and replaces the catalogue's
near-duplicate marks with what it finds, in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import groupby

from sqlalchemy import func, select

from corpus.db import Catalogue, translate_db_errors
from corpus.dedup import find_near_duplicates
from corpus.models import Blob, Program, ProgramVersion, RenderPass
from corpus.store import set_near_duplicates

DEFAULT_THRESHOLD = 0.85


def _programs_in_order(catalogue: Catalogue) -> Iterator[tuple[int, str]]:
    stmt = (
        select(Program.id, Blob.text)
        .join(
            ProgramVersion,
            (ProgramVersion.program_id == Program.id) & (ProgramVersion.code_sha256 == Program.code_sha256),
        )
        .join(RenderPass, RenderPass.version_id == ProgramVersion.id)
        .join(Blob, Blob.sha256 == RenderPass.code_sha256)
        .where((Program.duplicate_kind.is_(None)) | (Program.duplicate_kind == "near"))
        .order_by(
            Program.created_at.is_(None),
            Program.created_at,
            Program.first_seen,
            Program.id,
            RenderPass.position,
        )
        .execution_options(yield_per=5000)
    )
    with translate_db_errors(catalogue.url), catalogue.engine.connect() as conn:
        for pid, rows in groupby(conn.execute(stmt), key=lambda r: r[0]):
            yield pid, "\n".join(code for _, code in rows)


def near_duplicate_candidates(catalogue: Catalogue) -> int:
    """How many programs ``corpus dedup`` compares: those that are not exact duplicates."""
    with translate_db_errors(catalogue.url), catalogue.engine.connect() as conn:
        return conn.execute(
            select(func.count())
            .select_from(Program)
            .where((Program.duplicate_kind.is_(None)) | (Program.duplicate_kind == "near"))
        ).scalar_one()


def mark_near_duplicates(
    catalogue: Catalogue,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> dict[str, float | int]:
    """Find near duplicates among non-exact-duplicates and store them; returns counts.

    ``progress(n)`` is called as each chunk of ``n`` programs has been hashed; ``workers`` as
    for :func:`corpus.dedup.find_near_duplicates` (1 or less: in this process).
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError("threshold must be in (0, 1]")
    items = list(_programs_in_order(catalogue))
    signed = 0

    def signed_so_far(count: int) -> None:  # find_near_duplicates counts from the start
        nonlocal signed
        if progress is not None:
            progress(count - signed)
        signed = count

    pairs = find_near_duplicates(items, threshold=threshold, progress=signed_so_far, workers=workers)
    with catalogue.session() as s:
        marked = set_near_duplicates(s.connection(), [(p.duplicate, p.original, p.similarity) for p in pairs])
    return {"programs": len(items), "near_duplicates": marked, "threshold": threshold}
