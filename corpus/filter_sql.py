"""A :class:`~corpus.filters.ProgramFilter` turned into SQL conditions on ``program``.

Listings, snapshots, validation and vetting all select programs through :func:`apply_filter`,
so that what a user lists is exactly what a snapshot or a validation run would take. It builds
on the models only: :mod:`corpus.queries` and :mod:`corpus.validations` both import it.
"""

from __future__ import annotations

from sqlalchemy import Select, Text, and_, exists, func, literal_column, or_, select
from sqlalchemy.orm import aliased

from corpus.code_search import code_condition
from corpus.filters import ProgramFilter
from corpus.models import Exclusion, Licence, Program, Source, Validation, Vetting
from corpus.records import author_key


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


def excluded_condition():
    """A condition on ``program``: a takedown covers it."""
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
        conds.append(code_condition(flt.code, dialect))
    if not flt.include_duplicates:
        conds.append(Program.duplicate_of_id.is_(None))
    if flt.only_excluded:
        conds.append(excluded_condition())
    elif not flt.include_excluded:
        conds.append(~excluded_condition())
    if flt.statuses:
        conds.append(status_condition(flt.statuses, flt.renderer))
    if flt.vetted is not None:
        conds.append(vetted_condition(flt.vetted))
    return stmt.where(and_(*conds)) if conds else stmt


def latest_validation(renderer: str | None):
    """A subquery of one validation per (code, dialect): the renderer's, or the newest of any."""
    if renderer:
        return (
            select(Validation.id, Validation.code_sha256, Validation.dialect, Validation.status)
            .where(Validation.renderer == renderer)
            .subquery()
        )
    newest = (
        select(func.max(Validation.id).label("id"))
        .group_by(Validation.code_sha256, Validation.dialect)
        .subquery()
    )
    return (
        select(Validation.id, Validation.code_sha256, Validation.dialect, Validation.status)
        .join(newest, newest.c.id == Validation.id)
        .subquery()
    )


def status_condition(statuses: list[str], renderer: str | None):
    """A condition on ``program``: its current code's latest validation is in ``statuses``
    (``unvalidated`` matches programs with none).

    Each program looks up its own code's validation through the (code, dialect, renderer) index:
    a correlated subquery over :func:`latest_validation`'s grouped one made SQLite group every
    validation again for every program (24,029 programs: ``corpus ls --status ok`` took 116 s)."""
    match = and_(Validation.code_sha256 == Program.code_sha256, Validation.dialect == Program.dialect)
    if renderer:
        which = Validation.renderer == renderer
    else:  # the newest validation of the code, of any renderer
        other = aliased(Validation)
        newest = (
            select(func.max(other.id))
            .where(other.code_sha256 == Program.code_sha256, other.dialect == Program.dialect)
            .correlate(Program)
            .scalar_subquery()
        )
        which = Validation.id == newest
    named = [st for st in statuses if st != "unvalidated"]
    conds = []
    if named:
        conds.append(exists(select(Validation.id).where(match, which, Validation.status.in_(named))))
    if "unvalidated" in statuses:
        conds.append(~exists(select(Validation.id).where(match, which)))
    return or_(*conds)


def vetted_condition(vetted: bool):
    """A condition on ``program``: a stored verdict on its current code says ``vetted``."""
    cond = exists().where(
        Vetting.program_id == Program.id,
        Vetting.code_sha256 == Program.code_sha256,
        Vetting.vetted.is_(True),
    )
    return cond if vetted else ~cond
