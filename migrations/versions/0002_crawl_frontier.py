"""The crawl frontier: every request a crawl will make, with its state, so a crawl survives a kill.

Revision ID: 0002_crawl_frontier
Revises: 0001_catalogue
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_crawl_frontier"
down_revision = "0001_catalogue"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "crawl_request",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("method", sa.String(8), nullable=False, server_default="GET"),
        sa.Column("body", sa.Text),
        sa.Column("fingerprint", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(32)),
        sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
        sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", TZ, nullable=False),
        sa.Column("etag", sa.Text),
        sa.Column("last_modified", sa.Text),
        sa.Column("last_status", sa.Integer),
        sa.Column("last_error", sa.Text),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_index("ix_crawl_request_claim", "crawl_request", ["source", "state", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_crawl_request_claim", table_name="crawl_request")
    op.drop_table("crawl_request")
