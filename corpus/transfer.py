"""Moving a catalogue to another database: ``corpus db copy SRC DST`` (SQLite ↔ PostgreSQL).

A copy is lossless: every row of every table with its id, JSON columns as their stored text
(so a JSON ``null`` stays apart from SQL NULL), times in UTC, so that code hashes, snapshots'
manifest hashes and their exports come out the same. It streams: each table is read in primary
key order a batch at a time (keyset paging), so memory stays flat whatever the catalogue's size.
The source is read in one transaction, a consistent picture even while a crawl writes to it;
the destination is written in one transaction too, so a copy that fails leaves it as it was
and can simply be run again. PostgreSQL's id sequences are moved past the copied ids.

Two things are rebuilt rather than copied: the code-search index (SQLite's FTS5 table,
PostgreSQL's ``program_code``: its queue is filled, and the index catches up on the next code
search or ``corpus index``), and the schema itself, which the destination gets from the
migrations before any row arrives.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Connection, Integer, Table, Text, bindparam, cast, func, select, text, update

from corpus.bulk import insert_rows
from corpus.db import Catalogue, display_url, translate_db_errors
from corpus.errors import CatalogueError
from corpus.models import Base, CodeSearchPending, HostSlot, Program, ValidationJob

#: Rows read and written at a time; raw documents (whole fetched pages) fewer at a time.
BATCH_ROWS = 2000
_BATCH_ROWS_OF = {"raw_document": 100}

#: The queue of the code-search index: refilled for the destination, never copied; nor are the
#: validators' job queue and the crawlers' host slots, which coordinate processes on one catalogue.
_NOT_COPIED = {CodeSearchPending.__tablename__, ValidationJob.__tablename__, HostSlot.__tablename__}


@dataclass
class CopyReport:
    """How many rows of each table the copy wrote (equal to the source's, or it failed)."""

    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def copy_catalogue(
    source: Catalogue,
    target: Catalogue,
    *,
    replace: bool = False,
    batch_rows: int = BATCH_ROWS,
    progress: Callable[[int], None] | None = None,
) -> CopyReport:
    """Copy every row of ``source`` into ``target`` (both at the schema head).

    ``target`` must hold no rows unless ``replace`` is set, which empties it first (in the same
    transaction as the copy). ``progress`` hears of each batch written. Raises
    :class:`CatalogueError` if the two are one database or the target is not empty.
    """
    if source.url == target.url:
        raise CatalogueError(
            f"the source and the destination are the same database ({display_url(source.url)})",
            hint="name another database as DST",
        )
    tables = copied_tables()
    report = CopyReport()
    with _reading(source) as src, translate_db_errors(target.url), target.engine.begin() as dst:
        counts = {t.name: src.scalar(select(func.count()).select_from(t)) for t in tables}
        _make_room(dst, tables, target.url, replace)
        for table in tables:
            size = min(batch_rows, _BATCH_ROWS_OF.get(table.name, batch_rows))
            for rows in _batches(src, table, size):
                insert_rows(dst, table, rows, json_as_text=True)
                report.rows[table.name] = report.rows.get(table.name, 0) + len(rows)
                if progress is not None:
                    progress(len(rows))
        _restore_duplicate_marks(src, dst, batch_rows)
        _check_counts(dst, tables, counts)
        report.rows = {name: report.rows.get(name, 0) for name in counts}
        if dst.dialect.name == "postgresql":
            _move_sequences(dst, tables)
        # the code-search index is rebuilt, not copied: queue every program for it
        dst.execute(CodeSearchPending.__table__.insert().from_select(["program_id"], select(Program.id)))
    return report


def copied_tables() -> list[Table]:
    """The tables a copy moves, parents before children."""
    return [t for t in Base.metadata.sorted_tables if t.name not in _NOT_COPIED]


def count_rows(catalogue: Catalogue) -> int:
    """How many rows a copy of ``catalogue`` moves (for a progress bar)."""
    with catalogue.session() as s:
        return sum(s.scalar(select(func.count()).select_from(t)) for t in copied_tables())


class _Source:
    """The source's connection, whose failures name the source (the destination's name its own)."""

    def __init__(self, conn: Connection, url: str) -> None:
        self.conn, self.url = conn, url

    def execute(self, stmt):
        with translate_db_errors(self.url):
            return self.conn.execute(stmt)

    def scalar(self, stmt):
        return self.execute(stmt).scalar_one()


@contextlib.contextmanager
def _reading(catalogue: Catalogue) -> Iterator[_Source]:
    """The source, seen in one consistent state until the copy ends."""
    with translate_db_errors(catalogue.url), catalogue.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield _Source(conn, catalogue.url)
        else:  # pysqlite begins no transaction for reads by itself
            conn.exec_driver_sql("BEGIN")
            try:
                yield _Source(conn, catalogue.url)
            finally:
                conn.rollback()


def _make_room(dst: Connection, tables: list[Table], url: str, replace: bool) -> None:
    filled = [t.name for t in tables if dst.execute(select(text("1")).select_from(t).limit(1)).first()]
    if not filled:
        return
    if not replace:
        raise CatalogueError(
            f"the destination {display_url(url)} is not empty (it has rows in {', '.join(filled)})",
            hint="copy into a new database, or pass --replace to empty this one first",
        )
    everything = [*tables, CodeSearchPending.__table__, ValidationJob.__table__, HostSlot.__table__]
    if dst.dialect.name == "postgresql":
        names = ", ".join(dst.dialect.identifier_preparer.format_table(t) for t in everything)
        dst.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")  # program_code too
    else:
        for table in reversed(Base.metadata.sorted_tables):  # children first
            dst.execute(table.delete())
        dst.exec_driver_sql("DELETE FROM program_code_fts")


def _batches(src: _Source, table: Table, size: int) -> Iterator[list[dict[str, Any]]]:
    """The rows of ``table`` in primary-key order, ``size`` at a time (keyset paging), each a dict
    ready to insert: JSON as its stored text, times in UTC, duplicate marks left for later."""
    (key,) = table.primary_key.columns
    columns = [cast(c, Text).label(c.name) if isinstance(c.type, JSON) else c for c in table.c]
    query = select(*columns).order_by(key).limit(size)
    last = None
    while rows := src.execute(query if last is None else query.where(key > last)).mappings().all():
        last = rows[-1][key.name]
        yield [{name: _portable(table, name, value) for name, value in row.items()} for row in rows]


def _portable(table: Table, name: str, value: Any) -> Any:
    if isinstance(value, datetime):  # SQLite hands back naive UTC, PostgreSQL its session's zone
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if table.name == Program.__tablename__ and name == "duplicate_of_id":
        return None  # an original may come later in id order: set by _restore_duplicate_marks
    return value


def _restore_duplicate_marks(src: _Source, dst: Connection, size: int) -> None:
    marked = select(Program.id, Program.duplicate_of_id).where(Program.duplicate_of_id.is_not(None))
    query = marked.order_by(Program.id).limit(size)
    table = Program.__table__
    set_mark = update(table).where(table.c.id == bindparam("pid")).values(duplicate_of_id=bindparam("orig"))
    last = None
    while rows := src.execute(query if last is None else query.where(Program.id > last)).all():
        dst.execute(set_mark, [{"pid": pid, "orig": orig} for pid, orig in rows])
        last = rows[-1][0]


def _check_counts(dst: Connection, tables: list[Table], counts: dict[str, int]) -> None:
    for table in tables:
        copied = dst.execute(select(func.count()).select_from(table)).scalar_one()
        if copied != counts[table.name]:
            raise CatalogueError(
                f"the copy of {table.name} holds {copied} rows where the source has {counts[table.name]};"
                " nothing was written",
                hint="run the copy again; if it repeats, report it with both databases' corpus stats",
            )


def _move_sequences(dst: Connection, tables: list[Table]) -> None:
    """Point each serial id's sequence past the largest copied id, so new rows get new ids."""
    for table in tables:
        (key,) = table.primary_key.columns
        if not isinstance(key.type, Integer):
            continue
        name = dst.dialect.identifier_preparer.format_table(table)
        dst.exec_driver_sql(
            f"SELECT setval(pg_get_serial_sequence('{name}', '{key.name}'),"
            f" coalesce(max({key.name}), 0) + 1, false) FROM {name}"
        )
