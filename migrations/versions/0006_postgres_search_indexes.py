"""PostgreSQL's indexes for code search and listings (a no-op on SQLite, where FTS5 stays).

On SQLite the code search is the FTS5 trigram table of 0001. On PostgreSQL it is ``pg_trgm``: a
GIN trigram index on the code blobs answers ``ILIKE '%needle%'`` without reading every blob,
and an index on ``pass.code_sha256`` leads from a matching blob to its programs.
``CREATE EXTENSION pg_trgm`` needs no superuser since PostgreSQL 13 (a trusted extension: the
database's owner may create it). The downgrade leaves the extension in place, since other
objects of the database may use it.

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
    ("ix_blob_text_trgm", "blob", "text"),
    ("ix_program_title_trgm", "program", "title"),
    ("ix_program_description_trgm", "program", "description"),
    ("ix_program_tags_trgm", "program", "lower(tags::text)"),
)


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    if not _postgresql():
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, table, expression in _TRIGRAM_INDEXES:
        op.execute(f"CREATE INDEX {name} ON {table} USING gin (({expression}) gin_trgm_ops)")
    op.create_index("ix_pass_code_sha256", "pass", ["code_sha256"])
    op.create_index("ix_licence_spdx_lower", "licence", [sa.text("lower(spdx)")])


def downgrade() -> None:
    if not _postgresql():
        return
    op.drop_index("ix_licence_spdx_lower", table_name="licence")
    op.drop_index("ix_pass_code_sha256", table_name="pass")
    for name, table, _ in _TRIGRAM_INDEXES:
        op.drop_index(name, table_name=table)
