"""Leases for many validators and crawlers on one catalogue (issue 12 items 3 and 4).

``validation_job`` is the queue ``render validate`` processes share: one row per (code, dialect,
renderer) to validate, claimed with a lease (holder, expires_at) and stamped ``finished_at``
when its result is stored. A partial index holds the open jobs in claim order, so a claim reads
only the rows it takes however many are queued. ``host_slot`` holds, per host, the time the
next request may start: the crawl delay kept across processes instead of in each one's memory.
``crawl_request.holder`` names the crawl process an in-flight request is leased to.

Revision ID: 0007_leases
Revises: 0006_postgres_search_indexes
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_leases"
down_revision = "0006_postgres_search_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("crawl_request", sa.Column("holder", sa.String(64)))
    op.create_table(
        "validation_job",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code_sha256", sa.String(64), nullable=False),
        sa.Column("dialect", sa.String(32), nullable=False),
        sa.Column("renderer", sa.String(255), nullable=False),
        sa.Column("program_id", sa.Integer, sa.ForeignKey("program.id", ondelete="CASCADE"), nullable=False),
        sa.Column("holder", sa.String(64)),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("code_sha256", "dialect", "renderer", name="uq_validation_job_code_renderer"),
    )
    op.create_index(
        "ix_validation_job_open",
        "validation_job",
        ["renderer", "id", "expires_at"],
        sqlite_where=sa.text("finished_at IS NULL"),
        postgresql_where=sa.text("finished_at IS NULL"),
    )
    op.create_table(
        "host_slot",
        sa.Column("host", sa.String(255), primary_key=True),
        sa.Column("next_allowed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("host_slot")
    op.drop_index("ix_validation_job_open", table_name="validation_job")
    op.drop_table("validation_job")
    with op.batch_alter_table("crawl_request") as batch:
        batch.drop_column("holder")
