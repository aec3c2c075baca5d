"""One normalised author key, compared everywhere authors are compared.

Imports applied takedowns with Python's ``casefold``, while ``corpus ls --author``, snapshots
and the exclusion checks compared SQLite's ``lower()``, which folds ASCII only: a takedown of
"émile" kept "Émile"'s programs in listings and snapshots. ``program.author_key`` and
``exclusion.author_key`` hold ``corpus.records.author_key(author)`` (NFKC, casefolded,
stripped), computed in Python so every database compares the same thing. The index on
``lower(author)`` served only the old comparison and goes.

Portable SQL only (PostgreSQL runs these migrations too): plain ADD COLUMN and CREATE INDEX,
and the backfill reads and writes in batches by primary key through SQLAlchemy Core.

Revision ID: 0005_author_key
Revises: 0004_frontier_claim_order
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from corpus.records import author_key

revision = "0005_author_key"
down_revision = "0004_frontier_claim_order"
branch_labels = None
depends_on = None

BATCH = 5000


def _backfill(table_name: str) -> None:
    """Set ``author_key`` for every row with an author, ``BATCH`` rows a statement."""
    table = sa.table(table_name, sa.column("id", sa.Integer), sa.column("author"), sa.column("author_key"))
    conn = op.get_bind()
    update = table.update().where(table.c.id == sa.bindparam("row_id")).values(author_key=sa.bindparam("key"))
    select_batch = (
        sa.select(table.c.id, table.c.author)
        .where(table.c.author.is_not(None))
        .order_by(table.c.id)
        .limit(BATCH)
    )
    last_id = None
    while True:
        stmt = select_batch if last_id is None else select_batch.where(table.c.id > last_id)
        rows = conn.execute(stmt).all()
        if not rows:
            return
        conn.execute(update, [{"row_id": row_id, "key": author_key(author)} for row_id, author in rows])
        last_id = rows[-1][0]


def upgrade() -> None:
    op.add_column("program", sa.Column("author_key", sa.String(1024)))
    op.add_column("exclusion", sa.Column("author_key", sa.String(1024)))
    _backfill("program")
    _backfill("exclusion")
    op.create_index("ix_program_author_key", "program", ["author_key"])
    op.drop_index("ix_program_author_lower", table_name="program")


def downgrade() -> None:
    op.create_index("ix_program_author_lower", "program", [sa.text("lower(author)")])
    op.drop_index("ix_program_author_key", table_name="program")
    # Plain DROP COLUMN (SQLite >= 3.35 has it): a batch copy would drop and recreate `program`,
    # and with foreign keys on, dropping it cascades to every table that points at it.
    op.drop_column("exclusion", "author_key")
    op.drop_column("program", "author_key")
