"""Reading the catalogue: listings, one program in full, statistics.

The command line and other packages call these functions. A :class:`ProgramFilter` is shared by
``corpus ls`` and ``corpus snapshot create`` (through :mod:`corpus.filter_sql`) so that what a
user lists is exactly what a snapshot would take.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Select, func, literal_column, select, text
from sqlalchemy.orm import aliased

from corpus.code_search import pending_code_index, refresh_code_index
from corpus.db import Catalogue
from corpus.errors import UsageProblem
from corpus.filter_sql import apply_filter, exclusion_matches
from corpus.filters import ProgramFilter
from corpus.models import (
    Blob,
    Exclusion,
    Licence,
    Program,
    ProgramVersion,
    Provenance,
    Snapshot,
    Source,
)
from corpus.pg_listing import rows_in_key_order
from corpus.programs import find_program, version_passes
from corpus.times import iso_utc
from corpus.validations import latest_program_validation, program_status_columns, validation_counts

__all__ = [  # with names of the modules it builds on, which callers import from here
    "SORTS",
    "ProgramFilter",
    "apply_filter",
    "count_programs",
    "find_program",
    "list_programs",
    "pending_code_index",
    "refresh_code_index",
    "show_program",
    "stats",
    "version_passes",
]

SORTS = {  # keys: corpus.filters.SORT_NAMES, in that order
    "key": (Source.name, Program.external_id),
    "created": (Program.created_at, Source.name, Program.external_id),
    "-created": (Program.created_at.desc(), Source.name, Program.external_id),
    "title": (Program.title, Source.name, Program.external_id),
    "author": (Program.author, Source.name, Program.external_id),
    "seen": (Program.last_seen.desc(), Source.name, Program.external_id),
}


def _listing_select() -> Select:
    dup = aliased(Program)
    dup_source = aliased(Source)
    return (
        select(
            Program.id,
            Source.name.label("source"),
            Program.external_id,
            Program.title,
            Program.author,
            Program.url,
            Program.dialect,
            Program.created_at,
            Program.last_seen,
            Program.tags,
            Licence.spdx.label("licence_spdx"),
            Licence.licence_class,
            Licence.evidence.label("licence_evidence"),
            Program.code_sha256,
            (dup_source.name + ":" + dup.external_id).label("duplicate_of"),
            Program.duplicate_kind,
        )
        .select_from(Program)
        .join(Source, Source.id == Program.source_id)
        .join(Licence, Licence.program_id == Program.id, isouter=True)
        .join(dup, dup.id == Program.duplicate_of_id, isouter=True)
        .join(dup_source, dup_source.id == dup.source_id, isouter=True)
    )


def list_programs(
    catalogue: Catalogue, flt: ProgramFilter, *, limit: int | None = 100, sort: str = "key"
) -> Iterator[dict[str, Any]]:
    """Rows for ``corpus ls``: one dict per program, streamed."""
    if sort not in SORTS:
        raise UsageProblem(f"unknown sort {sort!r}", hint=f"use one of: {', '.join(SORTS)}")
    if flt.code:
        refresh_code_index(catalogue)
    with catalogue.session() as s:
        if catalogue.dialect == "postgresql" and sort == "key" and limit:
            rows = rows_in_key_order(s, _listing_select(), flt, limit)
        else:
            stmt = apply_filter(_listing_select(), flt, catalogue.dialect).order_by(*SORTS[sort])
            rows = s.execute(stmt.limit(limit) if limit else stmt).mappings()
        rows = iter(rows)
        while chunk := list(itertools.islice(rows, 500)):
            render_columns = program_status_columns(s, [row["id"] for row in chunk], flt.renderer)
            for row in chunk:
                out = dict(row)
                program_id = out.pop("id")
                out["created_at"] = iso_utc(out["created_at"])
                out["last_seen"] = iso_utc(out["last_seen"])
                out["tags"] = out["tags"] or []
                out["program"] = f"{out['source']}:{out['external_id']}"
                out.update(render_columns[program_id])
                yield out


def _count_statement(catalogue: Catalogue, flt: ProgramFilter, what=None) -> Select:
    """``SELECT count(*)`` of the programs ``flt`` selects (or ``SELECT what`` of each of them)."""
    return apply_filter(
        select(func.count() if what is None else what)
        .select_from(Program)
        .join(Source, Source.id == Program.source_id)
        .join(Licence, Licence.program_id == Program.id, isouter=True),
        flt,
        catalogue.dialect,
    )


def count_programs(catalogue: Catalogue, flt: ProgramFilter) -> int:
    if flt.code:
        refresh_code_index(catalogue)
    with catalogue.session() as s:
        return s.execute(_count_statement(catalogue, flt)).scalar_one()


def count_programs_within(catalogue: Catalogue, flt: ProgramFilter, seconds: float) -> tuple[int, bool]:
    """How many programs ``flt`` selects, and whether that is exact: on PostgreSQL a count that
    would take longer than ``seconds`` (0: any) is cut off and the planner's estimate given
    instead, marked not exact; on SQLite always the exact count.

    Why: ``corpus ls`` says "showing 100 of N", and at a million programs counting two filters
    that each keep a tenth of them (licence and tag: every program's tags tested, then its
    licence) took 1 s on PostgreSQL where listing the first 100 took 22 ms (benchmarks/RESULTS.md,
    issue 12). A listing should not wait ten times as long for its footnote."""
    if catalogue.dialect != "postgresql":
        return count_programs(catalogue, flt), True
    if flt.code:
        refresh_code_index(catalogue)
    stmt = _count_statement(catalogue, flt)
    from sqlalchemy.exc import OperationalError

    if seconds > 0:
        try:
            with catalogue.session() as s:
                # LOCAL: only this transaction; the server cancels the count when it runs over
                s.execute(text(f"SET LOCAL statement_timeout = {max(1, round(seconds * 1000))}"))
                return s.execute(stmt).scalar_one(), True
        except OperationalError as exc:
            if "statement timeout" not in str(exc):
                raise
    # the planner's estimate of the rows themselves (a count's plan estimates one row, or one a
    # parallel worker)
    rows = _count_statement(catalogue, flt, literal_column("1"))
    with catalogue.session() as s:
        conn = s.connection()
        compiled = rows.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
        plan = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + str(compiled), compiled.params).scalar_one()
    return int(plan[0]["Plan"]["Plan Rows"]), False


def show_program(catalogue: Catalogue, key: str) -> dict[str, Any]:
    """Everything about one program: metadata, licence evidence, passes, versions, duplicates,
    and the newest validation of its code (with the driver's compile or link log)."""
    with catalogue.session() as s:
        program = find_program(s, key)
        source = s.get(Source, program.source_id)
        lic = s.get(Licence, program.id)
        version = s.execute(
            select(ProgramVersion).where(
                ProgramVersion.program_id == program.id, ProgramVersion.code_sha256 == program.code_sha256
            )
        ).scalar_one()
        versions = s.execute(
            select(ProgramVersion.code_sha256, ProgramVersion.first_seen)
            .where(ProgramVersion.program_id == program.id)
            .order_by(ProgramVersion.id)
        ).all()
        dup_of = None
        if program.duplicate_of_id is not None:
            orig = s.get(Program, program.duplicate_of_id)
            dup_of = f"{s.get(Source, orig.source_id).name}:{orig.external_id}"
        duplicates = [
            {"program": f"{name}:{ext}", "kind": kind, "score": score}
            for name, ext, kind, score in s.execute(
                select(Source.name, Program.external_id, Program.duplicate_kind, Program.duplicate_score)
                .join(Source, Source.id == Program.source_id)
                .where(Program.duplicate_of_id == program.id)
                .order_by(Source.name, Program.external_id)
            )
        ]
        provenance = [
            {"via": via, "location": loc, "seen_at": iso_utc(at), "code_sha256": code}
            for via, loc, at, code in s.execute(
                select(Provenance.via, Provenance.location, Provenance.seen_at, Provenance.code_sha256)
                .where(Provenance.program_id == program.id)
                .order_by(Provenance.id)
            )
        ]
        takedown = (
            s.execute(
                select(Exclusion.reason).where(
                    exclusion_matches(source.name, program.external_id, program.author_key)
                )
            )
            .scalars()
            .first()
        )
        return {
            "program": f"{source.name}:{program.external_id}",
            "source": source.name,
            "excluded": takedown,
            "external_id": program.external_id,
            "title": program.title,
            "author": program.author,
            "description": program.description,
            "tags": program.tags or [],
            "url": program.url,
            "dialect": program.dialect,
            "created_at": iso_utc(program.created_at),
            "updated_at": iso_utc(program.updated_at),
            "first_seen": iso_utc(program.first_seen),
            "last_seen": iso_utc(program.last_seen),
            "parent": f"{source.name}:{program.parent_ref}" if program.parent_ref else None,
            "code_sha256": program.code_sha256,
            "licence_spdx": lic.spdx if lic else "NOASSERTION",
            "licence_class": lic.licence_class if lic else "unknown",
            "licence_evidence": lic.evidence if lic else "none",
            "licence": {
                "spdx": lic.spdx,
                "class": lic.licence_class,
                "evidence": lic.evidence,
                "matched_text": lic.matched_text,
                "score": lic.score,
                "engine": lic.engine,
                "candidates": lic.candidates or [],
            }
            if lic
            else None,
            "duplicate_of": dup_of,
            "duplicate_kind": program.duplicate_kind,
            "duplicate_score": program.duplicate_score,
            "duplicates": duplicates,
            "versions": [{"code_sha256": c, "first_seen": iso_utc(t)} for c, t in versions],
            "provenance": provenance,
            "validation": latest_program_validation(s, program),
            "passes": version_passes(s, version.id),
        }


def stats(catalogue: Catalogue) -> dict[str, Any]:
    """Counts a user wants at a glance: per source, dialect, licence class and evidence, and per
    validation status (the newest validation of each program's current code)."""
    by_status = validation_counts(catalogue)
    with catalogue.session() as s:

        def grouped(column, *joins) -> dict[str, int]:
            stmt = select(column, func.count()).select_from(Program)
            for target, on in joins:
                stmt = stmt.join(target, on, isouter=True)
            return {str(k): n for k, n in s.execute(stmt.group_by(column).order_by(func.count().desc()))}

        lic = (Licence, Licence.program_id == Program.id)
        return {
            "programs": s.execute(select(func.count()).select_from(Program)).scalar_one(),
            "versions": s.execute(select(func.count()).select_from(ProgramVersion)).scalar_one(),
            "blobs": s.execute(select(func.count()).select_from(Blob)).scalar_one(),
            "code_bytes": s.execute(select(func.coalesce(func.sum(Blob.size), 0))).scalar_one(),
            "by_source": grouped(Source.name, (Source, Source.id == Program.source_id)),
            "by_dialect": grouped(Program.dialect),
            "by_licence_class": grouped(Licence.licence_class, lic),
            "by_licence_evidence": grouped(Licence.evidence, lic),
            "top_spdx": dict(list(grouped(Licence.spdx, lic).items())[:15]),
            "duplicates": {
                str(k): n
                for k, n in s.execute(
                    select(Program.duplicate_kind, func.count())
                    .where(Program.duplicate_kind.is_not(None))
                    .group_by(Program.duplicate_kind)
                )
            },
            "by_validation_status": by_status,
            "exclusions": s.execute(select(func.count()).select_from(Exclusion)).scalar_one(),
            "snapshots": s.execute(select(func.count()).select_from(Snapshot)).scalar_one(),
        }
