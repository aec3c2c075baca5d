"""``harvest import``: stream a local dump into the catalogue, in committed batches, resumably.

Each file gets an :class:`~corpus.models.ImportRun` keyed by its path, size and mtime. Every
batch commits its programs together with the run's checkpoint (``items_done``, a count of
records read, so it holds for a compressed dump read through its decompressor), so a crash, a
kill or a full disk loses at most the batch in flight and the same command resumes after the
last committed batch (re-reading, not storing, the records before it). A file already
imported completely is skipped unless ``again`` is set; importing it again changes nothing (the
store is idempotent).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import insert, select, update

from corpus.db import Catalogue, refresh_statistics
from corpus.errors import CatalogueError, ImageProgramsError, InputFormatError
from corpus.models import ImportRun
from corpus.records import ProgramRecord
from corpus.store import BatchResult, ProgramStore, mark_exact_duplicates, utcnow
from harvest.importers import BadRecord, BytesRead, check_format, detect_format, dump_size, read_records
from harvest.importers.base import unexpected_problem

#: How many bad records a report keeps in full; the count covers all of them.
MAX_REPORTED_BAD = 200


@dataclass
class ImportReport:
    path: str
    format: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    excluded: int = 0
    bad_count: int = 0
    bad: list[BadRecord] = field(default_factory=list)
    resumed_from: int = 0
    already_imported: bool = False
    duplicates_marked: int = 0
    seconds: float = 0.0

    @property
    def records(self) -> int:
        return self.added + self.updated + self.unchanged + self.excluded

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "format": self.format,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "excluded": self.excluded,
            "bad": self.bad_count,
            "bad_records": [{"location": b.location, "reason": b.reason} for b in self.bad],
            "resumed_from": self.resumed_from,
            "already_imported": self.already_imported,
            "duplicates_marked": self.duplicates_marked,
            "seconds": round(self.seconds, 3),
        }


def _identity(path: Path) -> tuple[int, int]:
    """(size, mtime_ns) of a file, or of a folder's files taken together."""
    if path.is_dir():
        size = mtime = 0
        for root, dirs, files in os.walk(path):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in files:
                try:
                    st = os.stat(os.path.join(root, name))
                except OSError:
                    continue
                size += st.st_size
                mtime = max(mtime, st.st_mtime_ns)
        return size, mtime
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def import_path(
    catalogue: Catalogue,
    path: str | Path,
    fmt: str | None = None,
    *,
    strict: bool = False,
    again: bool = False,
    batch_size: int = 2000,
    progress: Callable[[int], None] | None = None,
    label: str | None = None,
    via: str = "import",
    finish: bool = True,
) -> ImportReport:
    """Import one file or folder; see the module docstring for the guarantees.

    ``progress`` is called after each batch with how far the import moved: in bytes of the
    dump files as stored when :func:`progress_total` gives a total, else in records.
    ``label`` stands for the path in the records' origins and ``via`` names the way in (a git
    crawl names its repository and ``crawl:git``); ``finish=False`` leaves marking duplicates and
    refreshing statistics to a caller that imports many files.
    """
    p = Path(path)
    if not p.exists():
        raise InputFormatError(f"{p} does not exist", hint="check the path")
    fmt = check_format(fmt) if fmt is not None else detect_format(p)
    started = time.perf_counter()
    size, mtime = _identity(p)
    key = str(p.resolve())
    report = ImportReport(path=str(p), format=fmt)

    with catalogue.session() as s:
        run = (
            s.execute(
                select(ImportRun)
                .where(
                    ImportRun.path == key,
                    ImportRun.format == fmt,
                    ImportRun.file_size == size,
                    ImportRun.file_mtime_ns == mtime,
                )
                .order_by(ImportRun.id.desc())
            )
            .scalars()
            .first()
        )
        if run is not None and run.complete and not again:
            report.already_imported = True
            return report
        if run is None or run.complete:
            run_id = s.execute(
                insert(ImportRun).returning(ImportRun.id),
                {
                    "path": key,
                    "format": fmt,
                    "file_size": size,
                    "file_mtime_ns": mtime,
                    "started_at": utcnow(),
                    "items_done": 0,
                },
            ).scalar_one()
            start = 0
        else:
            run_id, start = run.id, run.items_done
    report.resumed_from = start

    store = ProgramStore(catalogue, via=via)
    batch: list[ProgramRecord] = []
    bad_in_batch = 0
    done = start
    bytes_read = BytesRead()
    by_bytes = dump_size(p, fmt) is not None
    reported = 0

    def write(records: list[ProgramRecord], done: int | None, bad: int) -> BatchResult:
        """Store ``records`` and move the run's checkpoint to ``done`` (``None``: leave it)."""
        with catalogue.session() as s:
            conn = s.connection()
            result: BatchResult = store.store(records, conn) if records else BatchResult()
            conn.execute(
                update(ImportRun)
                .where(ImportRun.id == run_id)
                .values(
                    items_done=ImportRun.items_done if done is None else done,
                    added=ImportRun.added + result.added,
                    updated=ImportRun.updated + result.updated,
                    unchanged=ImportRun.unchanged + result.unchanged,
                    excluded=ImportRun.excluded + result.excluded,
                    bad=ImportRun.bad + bad,
                )
            )
        return result

    def bad_record(item: BadRecord) -> None:
        nonlocal bad_in_batch
        report.bad_count += 1
        bad_in_batch += 1
        if len(report.bad) < MAX_REPORTED_BAD:
            report.bad.append(item)

    def commit(done: int) -> None:
        nonlocal batch, bad_in_batch, reported
        records_read = len(batch) + bad_in_batch
        try:
            result = write(batch, done, bad_in_batch)
        except Exception as exc:
            if not _one_record_may_cause(exc):
                raise
            # One record of the batch could not be stored (the batch was rolled back): store them
            # one at a time, report the ones that fail as bad records, and go on.
            store.forget_uncommitted()
            result = BatchResult()
            for record in batch:
                try:
                    result.merge(write([record], None, 0))
                except Exception as record_exc:
                    if not _one_record_may_cause(record_exc):
                        raise
                    store.forget_uncommitted()
                    bad_record(BadRecord(record.origin or record.key, unexpected_problem(record_exc)))
            write([], done, bad_in_batch)
        report.added += result.added
        report.updated += result.updated
        report.unchanged += result.unchanged
        report.excluded += result.excluded
        if progress is not None:
            moved = bytes_read.count - reported if by_bytes else records_read
            reported += moved
            progress(moved)
        batch, bad_in_batch = [], 0

    records = read_records(p.resolve(), fmt, label=label, bytes_read=bytes_read)
    for position, item in _skip(records, start, str(p)):
        done = position + 1
        if isinstance(item, BadRecord):
            bad_record(item)
            if strict:
                commit(position)  # keep what came before the bad record
                raise InputFormatError(
                    f"{item.location}: {item.reason}",
                    hint="fix the record, or run without --strict to skip bad records",
                )
            continue
        batch.append(item)
        if len(batch) >= batch_size:
            commit(done)
    commit(done)

    with catalogue.session() as s:
        if finish:
            report.duplicates_marked = mark_exact_duplicates(s.connection())
        s.execute(update(ImportRun).where(ImportRun.id == run_id).values(complete=True, finished_at=utcnow()))
    if finish:
        refresh_statistics(catalogue)
    report.seconds = time.perf_counter() - started
    return report


def _one_record_may_cause(exc: Exception) -> bool:
    """Whether storing a batch failed in a way one record can cause (a bug on odd input), rather
    than the catalogue's (locked, read-only, full disk), which every record would meet again."""
    return not isinstance(exc, CatalogueError | MemoryError)


def progress_total(path: str | Path, fmt: str | None = None) -> int | None:
    """What :func:`import_path` reports progress against: the bytes of its JSON dumps as stored
    (compressed bytes for a compressed dump), or ``None`` where it counts records with no known
    total (shader folders, Shaders21k trees) or the path cannot be read (the import says why)."""
    try:
        p = Path(path)
        return dump_size(p, check_format(fmt) if fmt is not None else detect_format(p))
    except (ImageProgramsError, OSError):
        return None


def _skip(
    items: Iterator[ProgramRecord | BadRecord], start: int, label: str
) -> Iterator[tuple[int, ProgramRecord | BadRecord]]:
    """The items from position ``start`` on; a reader that fails unexpectedly ends the stream
    with one bad record that says so, instead of a traceback that loses the batch in flight."""
    i = -1
    try:
        for i, item in enumerate(items):
            if i >= start:
                yield i, item
    except Exception as exc:  # a reader's bug on odd input: report it like any bad record
        yield max(i + 1, start), BadRecord(label, f"reading stopped: {unexpected_problem(exc)}")
