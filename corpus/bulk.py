"""Writing many rows at once, the fast way for each database.

On SQLite an ``executemany`` is fast already. On PostgreSQL psycopg sends an ``executemany`` as
one Bind/Execute exchange per row, and that per-row work was most of an import's time (670
records/s where SQLite does 3,000). :func:`insert_rows` hands PostgreSQL each column as one
array instead, in a single ``INSERT … SELECT * FROM unnest(…)`` per batch, with the same values
SQLAlchemy would have bound (its own bind processors turn JSON and binary values into
parameters), so both paths store exactly the same rows.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, Column, Connection, MetaData, Table, Text
from sqlalchemy.dialects import sqlite

#: Rows per statement on PostgreSQL: bounds one statement's parameters (a few MB of code).
PG_ROWS_PER_STATEMENT = 5000


def insert_rows(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    ignore_conflicts_on: Sequence[str] | None = None,
    json_as_text: bool = False,
) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``table``.

    ``ignore_conflicts_on`` names a unique key: a row that collides with an existing one on it is
    skipped (``ON CONFLICT DO NOTHING``); without it a collision is an error. With
    ``json_as_text`` the values of JSON columns are JSON text, stored as they are (a copy
    between catalogues keeps SQL NULL apart from JSON ``null``, and every byte of the rest).
    """
    if not rows:
        return
    dialect = conn.dialect.name
    if dialect == "postgresql":
        for start in range(0, len(rows), PG_ROWS_PER_STATEMENT):
            chunk = rows[start : start + PG_ROWS_PER_STATEMENT]
            _insert_unnest(conn, table, chunk, ignore_conflicts_on, json_as_text)
        return
    if json_as_text:
        table = _json_as_text(table)
    if ignore_conflicts_on is None:
        conn.execute(table.insert(), list(rows))
    elif dialect == "sqlite":
        stmt = sqlite.insert(table).on_conflict_do_nothing(index_elements=list(ignore_conflicts_on))
        conn.execute(stmt, list(rows))
    else:  # pragma: no cover - other databases are not supported
        raise NotImplementedError(dialect)


@functools.cache
def _json_as_text(table: Table) -> Table:
    """``table`` with its JSON columns typed as text, so that their values go in unparsed."""
    return Table(
        table.name,
        MetaData(),
        *(Column(c.name, Text if isinstance(c.type, JSON) else c.type) for c in table.c),
    )


def _insert_unnest(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    conflict: Sequence[str] | None,
    json_as_text: bool,
) -> None:
    dialect = conn.dialect
    names = list(rows[0])
    arrays, casts = {}, []
    for i, name in enumerate(names):
        column = table.c[name]
        process = column.type.dialect_impl(dialect)._cached_bind_processor(dialect)
        if json_as_text and isinstance(column.type, JSON):
            process = None  # text[] cast to json[]: each value parsed by PostgreSQL, kept as written
        values = [row[name] for row in rows]
        arrays[f"c{i}"] = values if process is None else [process(v) for v in values]
        casts.append(f"%(c{i})b::{column.type.compile(dialect=dialect)}[]")
    quote = dialect.identifier_preparer.quote
    sql = (
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} ({', '.join(map(quote, names))})"
        f" SELECT * FROM unnest({', '.join(casts)})"
    )
    if conflict is not None:
        sql += f" ON CONFLICT ({', '.join(map(quote, conflict))}) DO NOTHING"
    conn.exec_driver_sql(sql, arrays)
