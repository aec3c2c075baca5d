"""Reading the catalogue: filters, listings, one program in full, statistics.

All SQL that reads programs lives here (and in :mod:`corpus.snapshots`); the command line and
other packages call these functions. A :class:`ProgramFilter` is shared by ``corpus ls`` and
``corpus snapshot create`` so that what a user lists is exactly what a snapshot would take.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, Text, and_, delete, exists, func, literal_column, or_, select, text
from sqlalchemy.orm import aliased

from corpus.db import Catalogue
from corpus.errors import CatalogueError, NotFoundError, UsageProblem
from corpus.filters import ProgramFilter
from corpus.models import (
    Blob,
    CodeSearchPending,
    Exclusion,
    Licence,
    Program,
    ProgramVersion,
    Provenance,
    RenderPass,
    Snapshot,
    Source,
)
from corpus.records import author_key, parse_program_key

SORTS = {  # keys: corpus.filters.SORT_NAMES, in that order
    "key": (Source.name, Program.external_id),
    "created": (Program.created_at, Source.name, Program.external_id),
    "-created": (Program.created_at.desc(), Source.name, Program.external_id),
    "title": (Program.title, Source.name, Program.external_id),
    "author": (Program.author, Source.name, Program.external_id),
    "seen": (Program.last_seen.desc(), Source.name, Program.external_id),
}


def exclusion_matches(source_name, external_id, author):
    """The condition under which an :class:`Exclusion` row covers a program: its key, or its
    author (on that source or on all). One definition for listings, snapshots and ``show``.

    ``author`` is the program's ``author_key`` (:func:`corpus.records.author_key`), never a
    database's ``lower()``, which folds only ASCII on SQLite."""
    return or_(
        and_(Exclusion.source == source_name, Exclusion.external_id == external_id),
        and_(
            Exclusion.external_id.is_(None),
            Exclusion.author_key.is_not(None),
            Exclusion.author_key == author,
            or_(Exclusion.source.is_(None), Exclusion.source == source_name),
        ),
    )


def _excluded_condition():
    return exists().where(exclusion_matches(Source.name, Program.external_id, Program.author_key))


def apply_filter(stmt: Select, flt: ProgramFilter, dialect: str) -> Select:
    """Add ``flt``'s conditions to a select over ``program`` joined with ``source`` and ``licence``."""
    conds = []
    if flt.sources:
        conds.append(Source.name.in_(flt.sources))
    if flt.dialects:
        conds.append(Program.dialect.in_(flt.dialects))
    if flt.licence_classes:
        conds.append(Licence.licence_class.in_(flt.licence_classes))
    if flt.spdx:
        conds.append(func.lower(Licence.spdx).in_([s.lower() for s in flt.spdx]))
    if flt.authors:
        conds.append(Program.author_key.in_(sorted({author_key(a) for a in flt.authors} - {None})))
    for tag in flt.tags:
        if dialect == "sqlite":
            conds.append(
                exists(
                    select(literal_column("1"))
                    .select_from(func.json_each(Program.tags).table_valued("value"))
                    .where(func.lower(literal_column("value")) == tag.lower())
                )
            )
        else:
            tags = func.lower(Program.tags.cast(Text()))
            conds.append(tags.contains(f'"{tag.lower()}"', autoescape=True))
    # autoescape: a user's "_" or "%" is that character, not a LIKE wildcard
    if flt.text:
        if dialect == "sqlite":  # SQLite's LIKE ignores ASCII case already; ilike's lower() costs a scan
            conds.append(
                or_(
                    Program.title.contains(flt.text, autoescape=True),
                    Program.description.contains(flt.text, autoescape=True),
                )
            )
        else:
            conds.append(
                or_(
                    Program.title.icontains(flt.text, autoescape=True),
                    Program.description.icontains(flt.text, autoescape=True),
                )
            )
    if flt.code:
        conds.append(_code_condition(flt.code, dialect))
    if not flt.include_duplicates:
        conds.append(Program.duplicate_of_id.is_(None))
    if not flt.include_excluded:
        conds.append(~_excluded_condition())
    if flt.statuses or flt.vetted is not None:
        from corpus.validations import status_condition, vetted_condition  # it builds on this module

        if flt.statuses:
            conds.append(status_condition(flt.statuses, flt.renderer))
        if flt.vetted is not None:
            conds.append(vetted_condition(flt.vetted))
    return stmt.where(and_(*conds)) if conds else stmt


def _code_condition(needle: str, dialect: str):
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


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def list_programs(
    catalogue: Catalogue, flt: ProgramFilter, *, limit: int | None = 100, sort: str = "key"
) -> Iterator[dict[str, Any]]:
    """Rows for ``corpus ls``: one dict per program, streamed."""
    if sort not in SORTS:
        raise UsageProblem(f"unknown sort {sort!r}", hint=f"use one of: {', '.join(SORTS)}")
    if flt.code:
        refresh_code_index(catalogue)
    stmt = apply_filter(_listing_select(), flt, catalogue.dialect).order_by(*SORTS[sort])
    if limit:
        stmt = stmt.limit(limit)
    from corpus.validations import program_status_columns  # it builds on this module

    with catalogue.session() as s:
        result = s.execute(stmt).mappings()
        while chunk := result.fetchmany(500):
            render_columns = program_status_columns(s, [row["id"] for row in chunk], flt.renderer)
            for row in chunk:
                out = dict(row)
                program_id = out.pop("id")
                out["created_at"] = _iso(out["created_at"])
                out["tags"] = out["tags"] or []
                out["program"] = f"{out['source']}:{out['external_id']}"
                out.update(render_columns[program_id])
                yield out


def count_programs(catalogue: Catalogue, flt: ProgramFilter) -> int:
    if flt.code:
        refresh_code_index(catalogue)
    stmt = apply_filter(
        select(func.count())
        .select_from(Program)
        .join(Source, Source.id == Program.source_id)
        .join(Licence, Licence.program_id == Program.id, isouter=True),
        flt,
        catalogue.dialect,
    )
    with catalogue.session() as s:
        return s.execute(stmt).scalar_one()


def _find_program(s, key: str) -> Program:
    try:
        source, external_id = parse_program_key(key)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from exc
    program = s.execute(
        select(Program).join(Source).where(Source.name == source, Program.external_id == external_id)
    ).scalar_one_or_none()
    if program is None:
        raise NotFoundError(f"no program {key} in the catalogue", hint="list programs with: corpus ls")
    return program


def version_passes(s, version_id: int, *, with_code: bool = True) -> list[dict[str, Any]]:
    """The passes of one program version, in order, with their code."""
    rows = s.execute(
        select(RenderPass, Blob.text)
        .join(Blob, Blob.sha256 == RenderPass.code_sha256)
        .where(RenderPass.version_id == version_id)
        .order_by(RenderPass.position)
    ).all()
    out = []
    for p, code in rows:
        item = {"name": p.name, "type": p.type, "code_sha256": p.code_sha256, "inputs": p.inputs}
        if with_code:
            item["code"] = code
        out.append(item)
    return out


def show_program(catalogue: Catalogue, key: str) -> dict[str, Any]:
    """Everything about one program: metadata, licence evidence, passes, versions, duplicates."""
    with catalogue.session() as s:
        program = _find_program(s, key)
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
            {"via": via, "location": loc, "seen_at": _iso(at), "code_sha256": code}
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
            "created_at": _iso(program.created_at),
            "updated_at": _iso(program.updated_at),
            "first_seen": _iso(program.first_seen),
            "last_seen": _iso(program.last_seen),
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
            "versions": [{"code_sha256": c, "first_seen": _iso(t)} for c, t in versions],
            "provenance": provenance,
            "passes": version_passes(s, version.id),
        }


def stats(catalogue: Catalogue) -> dict[str, Any]:
    """Counts a user wants at a glance: per source, dialect, licence class and evidence."""
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
            "exclusions": s.execute(select(func.count()).select_from(Exclusion)).scalar_one(),
            "snapshots": s.execute(select(func.count()).select_from(Snapshot)).scalar_one(),
        }
