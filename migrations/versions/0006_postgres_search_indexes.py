"""PostgreSQL's code-search index and listing indexes (a no-op on SQLite, where FTS5 stays).

On SQLite the code search is the FTS5 trigram table of 0001. On PostgreSQL it is ``pg_trgm``:
``program_code`` holds each program's current code (its passes joined by newlines, as the FTS5
table does) under a GIN trigram index that answers ``ILIKE '%needle%'``. Like the FTS5 table it
is brought up to date in bulk from ``code_search_pending`` (``corpus.code_search``), not during
imports: trigram indexing costs about 0.45 ms of the server's time per 2.5 KB program, more than
the rest of an import, and would halve its rate. This migration queues every existing program.
``CREATE EXTENSION pg_trgm`` needs no superuser since PostgreSQL 13 (a trusted extension: the
database's owner may create it). The downgrade leaves the extension in place, since other
objects of the database may use it.

Code text is compressed with lz4 where the server has it (pglz, the default, cost a real import
a sixth of its time: 2.5 s of 15 s for 10,000 Shadertoy programs on 2 cores).

The other ``corpus ls`` filters that scanned every program on PostgreSQL get indexes too:
``--search`` (``ILIKE`` on title and description) and ``--tag`` (a ``LIKE`` on the lower-cased
tags) trigram indexes, ``--spdx`` one on ``lower(spdx)``. An index on an expression also gives
the planner statistics on it, which it needs to choose between walking programs in key order
and using the index.

Revision ID: 0006_postgres_search_indexes
Revises: 0005_author_key_licence_class
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_postgres_search_indexes"
down_revision = "0005_author_key_licence_class"
branch_labels = None
depends_on = None


#: (index, table, expression): GIN trigram indexes, each answering ``LIKE``/``ILIKE '%…%'``
_TRIGRAM_INDEXES = (
    ("ix_program_code_trgm", "program_code", "code"),
    ("ix_program_title_trgm", "program", "title"),
    ("ix_program_description_trgm", "program", "description"),
    ("ix_program_tags_trgm", "program", "lower(tags::text)"),
)


#: (table, column): code text, compressed with lz4 where the server was built with it
_CODE_COLUMNS = (("blob", "text"), ("program_code", "code"))


def _has_lz4() -> bool:
    return bool(
        op.get_bind()
        .exec_driver_sql(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
        .scalar()
    )


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    if not _postgresql():
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "program_code",
        sa.Column(
            "program_id", sa.Integer, sa.ForeignKey("program.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("code", sa.Text, nullable=False),
    )
    for name, table, expression in _TRIGRAM_INDEXES:
        op.execute(f"CREATE INDEX {name} ON {table} USING gin (({expression}) gin_trgm_ops)")
    op.create_index("ix_licence_spdx_lower", "licence", [sa.text("lower(spdx)")])
    if _has_lz4():
        for table, column in _CODE_COLUMNS:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION lz4")
    op.execute("INSERT INTO code_search_pending (program_id) SELECT id FROM program ON CONFLICT DO NOTHING")


def downgrade() -> None:
    if not _postgresql():
        return
    op.execute("ALTER TABLE blob ALTER COLUMN text SET COMPRESSION default")
    op.drop_index("ix_licence_spdx_lower", table_name="licence")
    for name, table, _ in _TRIGRAM_INDEXES:
        op.drop_index(name, table_name=table)
    op.drop_table("program_code")
