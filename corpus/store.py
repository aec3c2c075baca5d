"""Writing programs into the catalogue, in batches, one transaction per batch.

:class:`ProgramStore` is the one way records enter the catalogue (importers, crawlers and
``harvest reparse``). A batch is all-or-nothing: a failure (a full disk, a lock, a bug) rolls the whole batch
back, so the catalogue is never half-written, and the caller's checkpoint moves only with a
committed batch. Code goes into content-addressed blobs; a program whose code changed gets a
new :class:`~corpus.models.ProgramVersion` and keeps the old one for the snapshots that pinned it.
Licence verdicts and the exact-duplicate key are computed here, on the way in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, and_, bindparam, delete, func, or_, select, update

from corpus.bulk import insert_rows
from corpus.db import Catalogue, translate_db_errors
from corpus.dedup import normalised_sha256
from corpus.licences import decide_for_record
from corpus.models import (
    Blob,
    CodeSearchPending,
    Exclusion,
    Licence,
    Program,
    ProgramVersion,
    Provenance,
    RenderPass,
    Source,
)
from corpus.records import ProgramRecord, author_key
from corpus.sources import source_info


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class BatchResult:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    excluded: int = 0

    def merge(self, other: BatchResult) -> None:
        self.added += other.added
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.excluded += other.excluded


def insert_or_ignore(conn: Connection, table, rows: list[dict], index_elements: Sequence[str]) -> None:
    """Insert ``rows``, skipping those whose ``index_elements`` key is taken already."""
    insert_rows(conn, table, rows, ignore_conflicts_on=index_elements)


class Exclusions:
    """The takedown list, loaded once per run: programs and authors to keep out.

    The same rule as :func:`corpus.filter_sql.exclusion_matches`, in memory, because imports check
    every record against it; authors are compared by :func:`corpus.records.author_key`.
    """

    def __init__(self, keys: set[tuple[str, str]], authors: set[tuple[str | None, str]]) -> None:
        self.keys = keys
        self.authors = authors

    @classmethod
    def load(cls, conn: Connection) -> Exclusions:
        keys: set[tuple[str, str]] = set()
        authors: set[tuple[str | None, str]] = set()
        for source, external_id, author in conn.execute(
            select(Exclusion.source, Exclusion.external_id, Exclusion.author)
        ):
            if external_id is not None and source is not None:
                keys.add((source, external_id))
            elif author_key(author) is not None:
                authors.add((source, author_key(author)))
        return cls(keys, authors)

    def excludes(self, source: str, external_id: str, author: str | None) -> bool:
        if (source, external_id) in self.keys:
            return True
        a = author_key(author)
        if a is None or not self.authors:
            return False
        return (source, a) in self.authors or (None, a) in self.authors


class ProgramStore:
    """Stores :class:`ProgramRecord` batches; holds caches that live as long as one run."""

    def __init__(self, catalogue: Catalogue, *, via: str = "import") -> None:
        self.catalogue = catalogue
        self.via = via
        self._source_ids: dict[str, int] = {}
        with translate_db_errors(catalogue.url), catalogue.engine.connect() as conn:
            self.exclusions = Exclusions.load(conn)

    def forget_uncommitted(self) -> None:
        """Drop what this store learnt in a transaction that was rolled back (a source row it
        inserted there is gone again); call it before storing into a new one."""
        self._source_ids.clear()

    def source_id(self, conn: Connection, name: str) -> int:
        if name not in self._source_ids:
            info = source_info(name)
            insert_or_ignore(
                conn,
                Source.__table__,
                [
                    {
                        "name": name,
                        "base_url": info.base_url,
                        "default_licence": info.default_licence,
                        "terms_url": info.terms_url,
                    }
                ],
                ["name"],
            )
            self._source_ids[name] = conn.execute(select(Source.id).where(Source.name == name)).scalar_one()
        return self._source_ids[name]

    def store(self, records: Sequence[ProgramRecord], conn: Connection) -> BatchResult:
        """Store one batch inside the caller's transaction (``conn``).

        Records with the same key in one batch are stored in order, so the later one wins and
        the earlier code stays as an older version.
        """
        result = BatchResult()
        chunk: list[ProgramRecord] = []
        seen: set[tuple[str, str]] = set()
        for record in records:
            key = (record.source, record.external_id)
            if key in seen:
                result.merge(self._store_chunk(chunk, conn))
                chunk, seen = [], set()
            seen.add(key)
            chunk.append(record)
        result.merge(self._store_chunk(chunk, conn))
        return result

    # -- one chunk: every key distinct ------------------------------------------------------
    def _store_chunk(self, records: list[ProgramRecord], conn: Connection) -> BatchResult:
        result = BatchResult()
        now = utcnow()
        kept: list[ProgramRecord] = []
        for r in records:
            if self.exclusions.excludes(r.source, r.external_id, r.author):
                result.excluded += 1
            else:
                kept.append(r)
        if not kept:
            return result

        blobs = {}
        for r in kept:
            for p in r.passes:
                blobs.setdefault(p.code_sha256, p.code)
        existing_blobs = set(conn.execute(select(Blob.sha256).where(Blob.sha256.in_(list(blobs)))).scalars())
        insert_or_ignore(
            conn,
            Blob.__table__,
            [
                {"sha256": h, "size": len(t.encode("utf-8", "surrogatepass")), "text": t}
                for h, t in blobs.items()
                if h not in existing_blobs
            ],
            ["sha256"],
        )

        keyed = [(self.source_id(conn, r.source), r) for r in kept]
        existing = {
            (row["source_id"], row["external_id"]): dict(row)
            for row in conn.execute(select(Program).where(_keys_condition(keyed))).mappings()
        }

        new_programs: list[tuple[int, ProgramRecord, str]] = []
        changed_code: list[tuple[dict, ProgramRecord, str]] = []
        seen: list[tuple[int, ProgramRecord, str]] = []  # (program id, record, code hash) for provenance
        seen_again: list[int] = []  # unchanged programs, whose last_seen still moves
        for sid, r in keyed:
            code_sha = r.code_sha256
            row = existing.get((sid, r.external_id))
            if row is None:
                new_programs.append((sid, r, code_sha))
            elif row["code_sha256"] != code_sha:
                changed_code.append((row, r, code_sha))
            else:
                meta = _metadata(r)
                changes = {k: v for k, v in meta.items() if v is not None and _differs(row[k], v)}
                if changes:
                    conn.execute(
                        update(Program).where(Program.id == row["id"]).values(**changes, last_seen=now)
                    )
                    result.updated += 1
                else:
                    seen_again.append(row["id"])
                    result.unchanged += 1
                seen.append((row["id"], r, code_sha))
        # Seen again unchanged: only the time moves, for every such program in one statement.
        for start in range(0, len(seen_again), 500):
            conn.execute(
                update(Program).where(Program.id.in_(seen_again[start : start + 500])).values(last_seen=now)
            )

        writes = _Writes()
        if new_programs:
            # Plain executemany, then one select for the ids: on SQLite SQLAlchemy runs an
            # INSERT … RETURNING that must keep parameter order one row at a time.
            insert_rows(
                conn,
                Program.__table__,
                [
                    {
                        "source_id": sid,
                        "external_id": r.external_id,
                        **_metadata(r),
                        "first_seen": now,
                        "last_seen": now,
                        "dialect": r.dialect,
                        "code_sha256": code_sha,
                        "norm_sha256": normalised_sha256([p.code for p in r.passes]),
                        "raw_document_id": r.raw_document_id,
                        "extra": r.extra or None,
                    }
                    for sid, r, code_sha in new_programs
                ],
            )
            id_of = {
                (sid, ext): pid
                for sid, ext, pid in conn.execute(
                    select(Program.source_id, Program.external_id, Program.id).where(
                        _keys_condition([(sid, r) for sid, r, _ in new_programs])
                    )
                )
            }
            ids = [id_of[(sid, r.external_id)] for sid, r, _ in new_programs]
            for pid, (_, r, code_sha) in zip(ids, new_programs, strict=True):
                writes.version(pid, r, code_sha, now)
                writes.licence(pid, r, code_sha)
                writes.search(pid)
                seen.append((pid, r, code_sha))
                result.added += 1

        for row, r, code_sha in changed_code:
            pid = row["id"]
            version = conn.execute(
                select(ProgramVersion.id).where(
                    ProgramVersion.program_id == pid, ProgramVersion.code_sha256 == code_sha
                )
            ).scalar()
            if version is None:
                writes.version(pid, r, code_sha, now)
            conn.execute(
                update(Program)
                .where(Program.id == pid)
                .values(
                    **{k: v for k, v in _metadata(r).items() if v is not None},
                    code_sha256=code_sha,
                    norm_sha256=normalised_sha256([p.code for p in r.passes]),
                    dialect=r.dialect,
                    last_seen=now,
                )
            )
            conn.execute(delete(Licence).where(Licence.program_id == pid))
            writes.licence(pid, r, code_sha)
            writes.search(pid)
            seen.append((pid, r, code_sha))
            result.updated += 1

        for pid, r, code_sha in seen:
            writes.provenance(pid, r, code_sha, now, self.via)
        writes.flush(conn)
        return result


class _Writes:
    """Rows of one chunk, written with one executemany per table instead of one statement per row."""

    def __init__(self) -> None:
        self.versions: list[dict] = []
        self.version_passes: list[list[dict]] = []
        self.licences: list[dict] = []
        self.provenance_rows: list[dict] = []
        self.search_rows: list[dict] = []

    def version(self, pid: int, r: ProgramRecord, code_sha: str, now: datetime) -> None:
        self.versions.append(
            {"program_id": pid, "code_sha256": code_sha, "dialect": r.dialect, "first_seen": now}
        )
        self.version_passes.append(
            [
                {
                    "position": i,
                    "name": p.name,
                    "type": p.type,
                    "code_sha256": p.code_sha256,
                    "inputs": [inp.to_json() for inp in p.inputs],
                }
                for i, p in enumerate(r.passes)
            ]
        )

    def licence(self, pid: int, r: ProgramRecord, code_sha: str) -> None:
        decision = decide_for_record(r, source_info(r.source).default_licence)
        chosen = decision.chosen
        self.licences.append(
            {
                "program_id": pid,
                "code_sha256": code_sha,
                "spdx": chosen.spdx,
                "licence_class": chosen.licence_class,
                "evidence": chosen.evidence,
                "matched_text": chosen.matched_text,
                "score": chosen.score,
                "engine": "builtin",
                "candidates": [
                    {
                        "spdx": c.spdx,
                        "licence_class": c.licence_class,
                        "evidence": c.evidence,
                        "matched_text": c.matched_text,
                        "score": c.score,
                    }
                    for c in decision.candidates
                ],
            }
        )

    def search(self, pid: int) -> None:
        self.search_rows.append({"program_id": pid})

    def provenance(self, pid: int, r: ProgramRecord, code_sha: str, now: datetime, via: str) -> None:
        self.provenance_rows.append(
            {
                "program_id": pid,
                "code_sha256": code_sha,
                "via": via,
                "location": r.origin or "unknown",
                "raw_document_id": r.raw_document_id,
                "seen_at": now,
            }
        )

    def flush(self, conn: Connection) -> None:
        if self.versions:
            insert_rows(conn, ProgramVersion.__table__, self.versions)
            keys = [(v["program_id"], v["code_sha256"]) for v in self.versions]
            # program_id IN (…) uses the unique index; a row-value IN over pairs would scan.
            version_id = {
                (pid, code): vid
                for pid, code, vid in conn.execute(
                    select(ProgramVersion.program_id, ProgramVersion.code_sha256, ProgramVersion.id).where(
                        ProgramVersion.program_id.in_({pid for pid, _ in keys})
                    )
                )
            }
            vids = [version_id[k] for k in keys]
            insert_rows(
                conn,
                RenderPass.__table__,
                [
                    {"version_id": vid, **p}
                    for vid, passes in zip(vids, self.version_passes, strict=True)
                    for p in passes
                ],
            )
        if self.licences:
            insert_rows(conn, Licence.__table__, self.licences)
        insert_or_ignore(conn, CodeSearchPending.__table__, self.search_rows, ["program_id"])
        insert_or_ignore(
            conn, Provenance.__table__, self.provenance_rows, ["program_id", "location", "code_sha256"]
        )


def _keys_condition(keyed: list[tuple[int, ProgramRecord]]):
    """``(source_id = s AND external_id IN (…)) OR …`` per source: SQLite answers that from the
    unique index, while a row-value ``(source_id, external_id) IN (…)`` scans the table."""
    by_source: dict[int, list[str]] = {}
    for sid, r in keyed:
        by_source.setdefault(sid, []).append(r.external_id)
    return or_(
        *(and_(Program.source_id == sid, Program.external_id.in_(ids)) for sid, ids in by_source.items())
    )


def _metadata(r: ProgramRecord) -> dict:
    return {
        "url": r.url,
        "title": r.title,
        "author": r.author,
        "author_key": author_key(r.author),
        "description": r.description,
        "tags": list(r.tags) if r.tags else None,
        "created_at": _utc(r.created_at),
        "updated_at": _utc(r.updated_at),
        "parent_ref": r.parent,
    }


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _differs(old, new) -> bool:
    if isinstance(new, datetime) and isinstance(old, datetime):
        return _utc(old) != _utc(new)
    return old != new


def mark_exact_duplicates(conn: Connection) -> int:
    """Point every program whose normalised code equals an earlier one's at that original.

    The original of a group is the earliest: created at the source first, then first seen,
    then the lowest id. Near-duplicate marks on exact duplicates are replaced; exact marks that
    no longer hold (the code changed) are cleared. Returns how many marks changed.
    """
    groups = (
        select(Program.norm_sha256).group_by(Program.norm_sha256).having(func.count() > 1).scalar_subquery()
    )
    rows = conn.execute(
        select(
            Program.id,
            Program.norm_sha256,
            Program.duplicate_of_id,
            Program.duplicate_kind,
        )
        .where(Program.norm_sha256.in_(groups))
        .order_by(
            Program.norm_sha256,
            Program.created_at.is_(None),
            Program.created_at,
            Program.first_seen,
            Program.id,
        )
    ).all()
    want: dict[int, int] = {}
    current: dict[int, tuple[int | None, str | None]] = {}
    original_of: dict[str, int] = {}
    for pid, norm, dup_of, kind in rows:
        current[pid] = (dup_of, kind)
        if norm not in original_of:
            original_of[norm] = pid
        else:
            want[pid] = original_of[norm]
    marks = [{"pid": pid, "orig": orig} for pid, orig in want.items() if current[pid] != (orig, "exact")]
    stale = [
        {"pid": pid}
        for pid in conn.execute(select(Program.id).where(Program.duplicate_kind == "exact")).scalars()
        if pid not in want
    ]
    table = Program.__table__
    if marks:
        conn.execute(
            update(table)
            .where(table.c.id == bindparam("pid"))
            .values(duplicate_of_id=bindparam("orig"), duplicate_kind="exact", duplicate_score=1.0),
            marks,
        )
    if stale:
        conn.execute(
            update(table)
            .where(table.c.id == bindparam("pid"))
            .values(duplicate_of_id=None, duplicate_kind=None, duplicate_score=None),
            stale,
        )
    return len(marks) + len(stale)


def set_near_duplicates(conn: Connection, pairs: Iterable[tuple[int, int, float]]) -> int:
    """Replace every near-duplicate mark with ``pairs`` of (duplicate id, original id, similarity)."""
    conn.execute(
        update(Program)
        .where(Program.duplicate_kind == "near")
        .values(duplicate_of_id=None, duplicate_kind=None, duplicate_score=None)
    )
    rows = [{"pid": dup, "orig": orig, "score": float(score)} for dup, orig, score in pairs]
    if rows:
        table = Program.__table__
        conn.execute(
            update(table)
            .where(table.c.id == bindparam("pid"), table.c.duplicate_kind.is_(None))
            .values(
                duplicate_of_id=bindparam("orig"), duplicate_kind="near", duplicate_score=bindparam("score")
            ),
            rows,
        )
    return len(rows)
