"""One normalised author key, compared everywhere authors are compared; licence classes again.

Imports applied takedowns with Python's ``casefold``, while ``corpus ls --author``, snapshots
and the exclusion checks compared SQLite's ``lower()``, which folds ASCII only: a takedown of
"émile" kept "Émile"'s programs in listings and snapshots. ``program.author_key`` and
``exclusion.author_key`` hold ``corpus.records.author_key(author)`` (NFKC, casefolded,
stripped), computed in Python so every database compares the same thing. The index on
``lower(author)`` served only the old comparison and goes.

Licence classes now come from license-expression's licence database (``corpus.licences``): the
old hand list knew 24 permissive ids, so Artistic-2.0, MS-PL, UPL-1.0 and many more were stored
as ``unknown`` and left out of default snapshots. Every stored licence verdict (and the class of
each candidate) is classed again from its SPDX expression. Snapshots keep the classes they froze.

Portable SQL only (PostgreSQL runs these migrations too): plain ADD COLUMN and CREATE INDEX,
and the backfill reads and writes in batches by primary key through SQLAlchemy Core.

Revision ID: 0005_author_key_licence_class
Revises: 0004_frontier_claim_order
Create Date: 2026-12-06
"""

from collections.abc import Iterator

import sqlalchemy as sa
from alembic import op

from corpus.licences import licence_class
from corpus.records import author_key

revision = "0005_author_key_licence_class"
down_revision = "0004_frontier_claim_order"
branch_labels = None
depends_on = None

BATCH = 5000


def _batches(select: sa.Select, key: sa.ColumnElement) -> Iterator[list[sa.Row]]:
    """The rows of ``select``, ``BATCH`` at a time in ``key`` order (keyset paging: each batch
    starts after the last key of the one before, so rows updated meanwhile are not read again)."""
    conn = op.get_bind()
    select = select.order_by(key).limit(BATCH)
    last = None
    while rows := conn.execute(select if last is None else select.where(key > last)).all():
        yield rows
        last = rows[-1][0]


def _backfill_author_keys(table_name: str) -> None:
    table = sa.table(table_name, sa.column("id", sa.Integer), sa.column("author"), sa.column("author_key"))
    update = table.update().where(table.c.id == sa.bindparam("row_id")).values(author_key=sa.bindparam("key"))
    for rows in _batches(
        sa.select(table.c.id, table.c.author).where(table.c.author.is_not(None)), table.c.id
    ):
        op.get_bind().execute(
            update, [{"row_id": row_id, "key": author_key(author)} for row_id, author in rows]
        )


def _reclass_licences() -> None:
    """Class every stored licence verdict and candidate again from its SPDX expression."""
    table = sa.table(
        "licence",
        sa.column("program_id", sa.Integer),
        sa.column("spdx"),
        sa.column("licence_class"),
        sa.column("candidates", sa.JSON),
    )
    update = (
        table.update()
        .where(table.c.program_id == sa.bindparam("row_id"))
        .values(licence_class=sa.bindparam("cls"), candidates=sa.bindparam("cands"))
    )
    columns = (table.c.program_id, table.c.spdx, table.c.licence_class, table.c.candidates)
    for rows in _batches(sa.select(*columns), table.c.program_id):
        changed = []
        for row_id, spdx, cls, candidates in rows:
            reclassed = None
            if candidates is not None:
                reclassed = [c | {"licence_class": licence_class(c.get("spdx") or "")} for c in candidates]
            if licence_class(spdx) != cls or reclassed != candidates:
                changed.append({"row_id": row_id, "cls": licence_class(spdx), "cands": reclassed})
        if changed:
            op.get_bind().execute(update, changed)


def upgrade() -> None:
    op.add_column("program", sa.Column("author_key", sa.String(1024)))
    op.add_column("exclusion", sa.Column("author_key", sa.String(1024)))
    _backfill_author_keys("program")
    _backfill_author_keys("exclusion")
    _reclass_licences()
    op.create_index("ix_program_author_key", "program", ["author_key"])
    op.drop_index("ix_program_author_lower", table_name="program")


def downgrade() -> None:
    op.create_index("ix_program_author_lower", "program", [sa.text("lower(author)")])
    op.drop_index("ix_program_author_key", table_name="program")
    # Plain DROP COLUMN (SQLite >= 3.35 has it): a batch copy would drop and recreate `program`,
    # and with foreign keys on, dropping it cascades to every table that points at it.
    op.drop_column("exclusion", "author_key")
    op.drop_column("program", "author_key")
