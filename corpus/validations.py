"""The catalogue's side of rendering: which programs need validating, their code, and storing
validations, profiles and vetting verdicts. All the SQL ``render`` needs lives here.

Validations are keyed by (code hash, dialect, renderer string), so exact duplicates are
validated once and a program whose code changed is validated again. Work is handed out one
distinct code at a time with one representative program for messages.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, exists, func, select

from corpus.code_search import refresh_code_index
from corpus.db import Catalogue
from corpus.filter_sql import apply_filter, latest_validation
from corpus.filters import VALIDATION_STATUSES, ProgramFilter
from corpus.models import Licence, Profile, Program, ProgramVersion, Source, Validation, Vetting
from corpus.programs import find_program, version_passes
from corpus.times import iso_utc

#: Statuses a validation can end in (DESIGN "validation").
STATUSES = VALIDATION_STATUSES

PROFILE_FIELDS = (
    "frame_ms_median",
    "frame_ms_p90",
    "nonfinite_share",
    "colourfulness",
    "entropy",
    "jpeg_complexity",
    "coverage",
    "temporal_change",
    "diversity",
)


def _now() -> datetime:
    return datetime.now(UTC)


def _work_item(s, program: Program, source_name: str) -> dict[str, Any]:
    version_id = s.execute(
        select(ProgramVersion.id).where(
            ProgramVersion.program_id == program.id, ProgramVersion.code_sha256 == program.code_sha256
        )
    ).scalar_one()
    return {
        "program": f"{source_name}:{program.external_id}",
        "dialect": program.dialect,
        "code_sha256": program.code_sha256,
        "passes": version_passes(s, version_id),
    }


def load_program(catalogue: Catalogue, key: str) -> dict[str, Any]:
    """One program's current code: ``{program, dialect, code_sha256, passes: [{name, type, code,
    inputs, code_sha256}]}``."""
    with catalogue.session() as s:
        program = find_program(s, key)
        return _work_item(s, program, s.get(Source, program.source_id).name)


def pending_validation(
    catalogue: Catalogue,
    renderer: str,
    flt: ProgramFilter | None = None,
    *,
    again: bool = False,
    limit: int | None = None,
) -> list[tuple[int, str]]:
    """``(program id, key)`` of one representative program per distinct (code, dialect) that has
    no validation for ``renderer`` yet (all of them with ``again``), in a stable order."""
    flt = flt or ProgramFilter()
    if flt.code:
        refresh_code_index(catalogue)
    with catalogue.session() as s:
        stmt = (
            select(func.min(Program.id), Program.code_sha256, Program.dialect)
            .join(Source, Source.id == Program.source_id)
            .outerjoin(Licence, Licence.program_id == Program.id)
        )
        stmt = apply_filter(stmt, flt, catalogue.dialect)
        if not again:
            stmt = stmt.where(
                ~exists().where(
                    Validation.code_sha256 == Program.code_sha256,
                    Validation.dialect == Program.dialect,
                    Validation.renderer == renderer,
                )
            )
        stmt = stmt.group_by(Program.code_sha256, Program.dialect).order_by(func.min(Program.id))
        if limit:
            stmt = stmt.limit(limit)
        ids = [row[0] for row in s.execute(stmt)]
        keys = (
            dict(
                s.execute(
                    select(Program.id, Source.name + ":" + Program.external_id)
                    .join(Source, Source.id == Program.source_id)
                    .where(Program.id.in_(ids))
                ).all()
            )
            if ids
            else {}
        )
        return [(i, keys[i]) for i in ids]


def work_items(
    catalogue: Catalogue, program_ids: Iterable[int], chunk: int = 100
) -> Iterator[dict[str, Any]]:
    """The code of each program (see :func:`load_program`), in the order given, read a chunk at a
    time in short sessions so that results can be written between chunks."""
    ids = list(program_ids)
    for start in range(0, len(ids), chunk):
        with catalogue.session() as s:
            items = []
            for program_id in ids[start : start + chunk]:
                program = s.get(Program, program_id)
                if program is not None:
                    items.append(_work_item(s, program, s.get(Source, program.source_id).name))
        yield from items


def record_validations(catalogue: Catalogue, results: Iterable[dict[str, Any]]) -> int:
    """Store results (one transaction for all of them): each ``{code_sha256, dialect, renderer,
    status, log, compile_ms, first_frame_ms, standins, profiles: [{width, height, …}]}``.
    A result for a (code, dialect, renderer) already validated replaces it."""
    count = 0
    with catalogue.session() as s:
        for r in results:
            store_validation(s, r)
            count += 1
    return count


def store_validation(s, r: dict[str, Any]) -> None:
    """Store one result (see :func:`record_validations`) in the caller's transaction."""
    s.execute(
        delete(Validation).where(
            Validation.code_sha256 == r["code_sha256"],
            Validation.dialect == r["dialect"],
            Validation.renderer == r["renderer"],
        )
    )
    v = Validation(
        code_sha256=r["code_sha256"],
        dialect=r["dialect"],
        renderer=r["renderer"][:255],
        status=r["status"],
        log=(r.get("log") or None),
        compile_ms=r.get("compile_ms"),
        first_frame_ms=r.get("first_frame_ms"),
        standins=r.get("standins") or None,
        validated_at=_now(),
    )
    s.add(v)
    s.flush()
    for p in r.get("profiles") or []:
        s.add(
            Profile(
                validation_id=v.id,
                width=p["width"],
                height=p["height"],
                stats=p.get("stats"),
                **{f: float(p[f]) for f in PROFILE_FIELDS},
            )
        )


def validation_counts(catalogue: Catalogue, renderer: str | None = None) -> dict[str, int]:
    """How many programs (not codes) of the catalogue stand in each status; ``unvalidated`` too."""
    with catalogue.session() as s:
        latest = latest_validation(renderer)
        # Grouped by the bare status (None: no validation): PostgreSQL refuses a GROUP BY whose
        # coalesce(status, 'unvalidated') carries other bound parameters than the SELECT's.
        rows = s.execute(
            select(latest.c.status, func.count())
            .select_from(Program)
            .outerjoin(
                latest,
                and_(latest.c.code_sha256 == Program.code_sha256, latest.c.dialect == Program.dialect),
            )
            .group_by(latest.c.status)
        ).all()
    return {status or "unvalidated": n for status, n in rows}


def vetting_inputs(
    catalogue: Catalogue, renderer: str | None, flt: ProgramFilter | None = None
) -> Iterator[dict[str, Any]]:
    """Per program: its key, current code, latest validation and profiles, for a vetting policy."""
    latest = latest_validation(renderer)
    with catalogue.session() as s:
        stmt = (
            select(Program.id, Source.name, Program.external_id, Program.code_sha256, Validation)
            .join(Source, Source.id == Program.source_id)
            .outerjoin(Licence, Licence.program_id == Program.id)
            .outerjoin(
                latest,
                and_(latest.c.code_sha256 == Program.code_sha256, latest.c.dialect == Program.dialect),
            )
            .outerjoin(Validation, Validation.id == latest.c.id)
            .order_by(Program.id)
        )
        stmt = apply_filter(stmt, flt or ProgramFilter(), catalogue.dialect)
        rows = s.execute(stmt).all()
        validation_ids = [v.id for *_, v in rows if v is not None]
        profiles: dict[int, list[dict[str, Any]]] = {}
        for chunk_start in range(0, len(validation_ids), 900):
            chunk = validation_ids[chunk_start : chunk_start + 900]
            for p in s.execute(select(Profile).where(Profile.validation_id.in_(chunk))).scalars():
                profiles.setdefault(p.validation_id, []).append(_profile_json(p))
        for program_id, source, external_id, code, v in rows:
            yield {
                "program_id": program_id,
                "program": f"{source}:{external_id}",
                "code_sha256": code,
                "validation": None if v is None else _validation_json(v),
                "profiles": profiles.get(v.id, []) if v is not None else [],
            }


def _validation_json(v: Validation) -> dict[str, Any]:
    return {
        "status": v.status,
        "renderer": v.renderer,
        "log": v.log,
        "compile_ms": v.compile_ms,
        "first_frame_ms": v.first_frame_ms,
        "standins": v.standins or [],
        "validated_at": iso_utc(v.validated_at),
    }


def _profile_json(p: Profile) -> dict[str, Any]:
    out = {"width": p.width, "height": p.height, **{f: getattr(p, f) for f in PROFILE_FIELDS}}
    return out | {"stats": p.stats or {}}


def store_verdicts(catalogue: Catalogue, verdicts: Iterable[dict[str, Any]], policy_hash: str) -> int:
    """Replace the stored verdicts of these programs: ``{program_id, code_sha256, renderer,
    vetted, reasons}`` each."""
    now, n = _now(), 0
    with catalogue.session() as s:
        for v in verdicts:
            s.execute(delete(Vetting).where(Vetting.program_id == v["program_id"]))
            s.add(
                Vetting(
                    program_id=v["program_id"],
                    code_sha256=v["code_sha256"],
                    renderer=(v.get("renderer") or "")[:255],
                    policy_hash=policy_hash,
                    vetted=bool(v["vetted"]),
                    reasons=list(v["reasons"]),
                    decided_at=now,
                )
            )
            n += 1
    return n


def program_verdict(catalogue: Catalogue, key: str) -> dict[str, Any] | None:
    """The stored verdict on one program, or None."""
    with catalogue.session() as s:
        program = find_program(s, key)
        v = s.get(Vetting, program.id)
        if v is None:
            return None
        return {
            "vetted": v.vetted,
            "reasons": v.reasons,
            "policy_hash": v.policy_hash,
            "renderer": v.renderer,
            "current_code": v.code_sha256 == program.code_sha256,
            "decided_at": iso_utc(v.decided_at),
        }


def latest_program_validation(s, program: Program) -> dict[str, Any] | None:
    """The newest validation of a program's current code (any renderer), log included, or None."""
    v = s.execute(
        select(Validation)
        .where(Validation.code_sha256 == program.code_sha256, Validation.dialect == program.dialect)
        .order_by(Validation.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return None if v is None else _validation_json(v)


def program_status_columns(s, program_ids: list[int], renderer: str | None) -> dict[int, dict[str, Any]]:
    """``{program id: {status, vetted, frame_ms_median}}`` for listing rows: the latest validation
    of each program's current code (for ``renderer``, or of any), its 256x256 frame time (else the
    largest profiled size), and the stored verdict when it is about the current code."""
    out: dict[int, dict[str, Any]] = {}
    for i in range(0, len(program_ids), 500):
        chunk = program_ids[i : i + 500]
        programs = s.execute(
            select(Program.id, Program.code_sha256, Program.dialect, Vetting.vetted, Vetting.code_sha256)
            .outerjoin(Vetting, Vetting.program_id == Program.id)
            .where(Program.id.in_(chunk))
        ).all()
        codes = sorted({code for _, code, *_ in programs})
        stmt = select(Validation.id, Validation.code_sha256, Validation.dialect, Validation.status).where(
            Validation.code_sha256.in_(codes)
        )
        if renderer:
            stmt = stmt.where(Validation.renderer == renderer)
        latest: dict[tuple[str, str], tuple[int, str]] = {}
        for vid, code, dialect, status in s.execute(stmt):
            if (code, dialect) not in latest or vid > latest[(code, dialect)][0]:
                latest[(code, dialect)] = (vid, status)
        medians: dict[int, tuple[int, float]] = {}
        vids = [vid for vid, _ in latest.values()]
        if vids:
            for vid, w, h, median in s.execute(
                select(Profile.validation_id, Profile.width, Profile.height, Profile.frame_ms_median).where(
                    Profile.validation_id.in_(vids)
                )
            ):
                rank = 10**9 if (w, h) == (256, 256) else w * h
                if vid not in medians or rank > medians[vid][0]:
                    medians[vid] = (rank, median)
        for pid, code, dialect, vetted, vet_code in programs:
            vid, status = latest.get((code, dialect), (None, None))
            out[pid] = {
                "status": status,
                "vetted": bool(vetted) if vetted is not None and vet_code == code else None,
                "frame_ms_median": medians[vid][1] if vid in medians else None,
            }
    return out


_MISSING_PROFILE = re.compile(r"no profile at (\d+)x(\d+)")


def nothing_vetted_hint(s) -> str | None:
    """What to run when no program of the catalogue is vetted (None when some are): validate,
    vet, or validate again at the size the policy's stored verdicts say is missing."""
    if s.execute(select(Vetting.program_id).where(Vetting.vetted.is_(True)).limit(1)).first():
        return None
    reasons = Counter(
        (reasons or ["no reason stored"])[0] for reasons in s.execute(select(Vetting.reasons)).scalars()
    )
    if not reasons:
        if s.execute(select(Validation.id).limit(1)).first() is None:
            return (
                "no program is validated yet: run render validate (its default sizes include the"
                " default policy's 256x256), then render vet"
            )
        return "no program is vetted yet: run render vet"
    reason, count = reasons.most_common(1)[0]
    missing = _MISSING_PROFILE.search(reason)
    if missing:
        width, height = missing.groups()
        size = width if width == height else f"{width}x{height}"
        return (
            f"the vetting policy judges {width}x{height} profiles and {count} programs have none:"
            f" run render validate --again --sizes {size}, then render vet"
        )
    return (
        f"render vet accepted no program; {count} of {reasons.total()} were rejected first for: {reason}"
        " (render vet --explain SOURCE:ID says why one is out)"
    )
