"""Validation, profiles and vetting verdicts: what the renderer made of each program.

Revision ID: 0003_validation
Revises: 0002_crawl_frontier
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_validation"
down_revision = "0002_crawl_frontier"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "validation",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code_sha256", sa.String(64), nullable=False),
        sa.Column("dialect", sa.String(32), nullable=False),
        sa.Column("renderer", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("log", sa.Text),
        sa.Column("compile_ms", sa.Float),
        sa.Column("first_frame_ms", sa.Float),
        sa.Column("standins", sa.JSON),
        sa.Column("validated_at", TZ, nullable=False),
        sa.UniqueConstraint("code_sha256", "dialect", "renderer", name="uq_validation_code_renderer"),
    )
    op.create_index("ix_validation_status", "validation", ["status"])
    op.create_table(
        "profile",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "validation_id", sa.Integer, sa.ForeignKey("validation.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("frame_ms_median", sa.Float, nullable=False),
        sa.Column("frame_ms_p90", sa.Float, nullable=False),
        sa.Column("nonfinite_share", sa.Float, nullable=False),
        sa.Column("colourfulness", sa.Float, nullable=False),
        sa.Column("entropy", sa.Float, nullable=False),
        sa.Column("jpeg_complexity", sa.Float, nullable=False),
        sa.Column("coverage", sa.Float, nullable=False),
        sa.Column("temporal_change", sa.Float, nullable=False),
        sa.Column("diversity", sa.Float, nullable=False),
        sa.Column("stats", sa.JSON),
        sa.UniqueConstraint("validation_id", "width", "height", name="uq_profile_size"),
    )
    op.create_table(
        "vetting",
        sa.Column(
            "program_id", sa.Integer, sa.ForeignKey("program.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("code_sha256", sa.String(64), nullable=False),
        sa.Column("renderer", sa.String(255), nullable=False),
        sa.Column("policy_hash", sa.String(64), nullable=False),
        sa.Column("vetted", sa.Boolean, nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("decided_at", TZ, nullable=False),
    )
    op.create_index("ix_vetting_vetted", "vetting", ["vetted"])


def downgrade() -> None:
    op.drop_index("ix_vetting_vetted", table_name="vetting")
    op.drop_table("vetting")
    op.drop_table("profile")
    op.drop_index("ix_validation_status", table_name="validation")
    op.drop_table("validation")
