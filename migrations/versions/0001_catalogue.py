"""The catalogue: sources, blobs, programs, versions, passes, provenance, licences, snapshots.

Revision ID: 0001_catalogue
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_catalogue"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "source",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("base_url", sa.String(512)),
        sa.Column("default_licence", sa.String(128)),
        sa.Column("terms_url", sa.String(512)),
    )
    op.create_table(
        "blob",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
    )
    op.create_table(
        "raw_document",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("source_id", sa.Integer, sa.ForeignKey("source.id"), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("fetched_at", TZ, nullable=False),
        sa.Column("status", sa.Integer),
        sa.Column("content_type", sa.String(255)),
        sa.Column("body_gzip", sa.LargeBinary, nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False),
    )
    op.create_table(
        "program",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("source_id", sa.Integer, sa.ForeignKey("source.id"), nullable=False),
        sa.Column("external_id", sa.String(512), nullable=False),
        sa.Column("url", sa.Text),
        sa.Column("title", sa.Text),
        sa.Column("author", sa.String(255)),
        sa.Column("description", sa.Text),
        sa.Column("tags", sa.JSON),
        sa.Column("created_at", TZ),
        sa.Column("updated_at", TZ),
        sa.Column("first_seen", TZ, nullable=False),
        sa.Column("last_seen", TZ, nullable=False),
        sa.Column("dialect", sa.String(32), nullable=False),
        sa.Column("code_sha256", sa.String(64), nullable=False),
        sa.Column("norm_sha256", sa.String(64), nullable=False),
        sa.Column("parent_ref", sa.String(512)),
        sa.Column("duplicate_of_id", sa.Integer, sa.ForeignKey("program.id", ondelete="SET NULL")),
        sa.Column("duplicate_kind", sa.String(16)),
        sa.Column("duplicate_score", sa.Float),
        sa.Column("raw_document_id", sa.Integer, sa.ForeignKey("raw_document.id", ondelete="SET NULL")),
        sa.Column("extra", sa.JSON),
        sa.UniqueConstraint("source_id", "external_id", name="uq_program_source_external"),
    )
    op.create_index("ix_program_norm_sha256", "program", ["norm_sha256"])
    op.create_index("ix_program_author", "program", ["author"])
    # corpus ls --author matches case-insensitively: an index on lower(author) answers that.
    op.create_index("ix_program_author_lower", "program", [sa.text("lower(author)")])
    op.create_index("ix_program_dialect", "program", ["dialect"])
    op.create_index("ix_program_duplicate_of", "program", ["duplicate_of_id"])
    op.create_table(
        "program_version",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("program_id", sa.Integer, sa.ForeignKey("program.id", ondelete="CASCADE"), nullable=False),
        sa.Column("code_sha256", sa.String(64), nullable=False),
        sa.Column("dialect", sa.String(32), nullable=False),
        sa.Column("first_seen", TZ, nullable=False),
        sa.UniqueConstraint("program_id", "code_sha256", name="uq_version_program_code"),
    )
    op.create_table(
        "pass",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "version_id", sa.Integer, sa.ForeignKey("program_version.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("code_sha256", sa.String(64), sa.ForeignKey("blob.sha256"), nullable=False),
        sa.Column("inputs", sa.JSON, nullable=False),
        sa.UniqueConstraint("version_id", "position", name="uq_pass_version_position"),
    )
    op.create_table(
        "provenance",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("program_id", sa.Integer, sa.ForeignKey("program.id", ondelete="CASCADE"), nullable=False),
        sa.Column("code_sha256", sa.String(64), nullable=False),
        sa.Column("via", sa.String(32), nullable=False),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("raw_document_id", sa.Integer, sa.ForeignKey("raw_document.id", ondelete="SET NULL")),
        sa.Column("seen_at", TZ, nullable=False),
        sa.UniqueConstraint("program_id", "location", "code_sha256", name="uq_provenance_seen"),
    )
    op.create_table(
        "licence",
        sa.Column(
            "program_id", sa.Integer, sa.ForeignKey("program.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("code_sha256", sa.String(64), nullable=False),
        sa.Column("spdx", sa.String(255), nullable=False),
        sa.Column("licence_class", sa.String(16), nullable=False),
        sa.Column("evidence", sa.String(32), nullable=False),
        sa.Column("matched_text", sa.Text),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("engine", sa.String(32), nullable=False),
        sa.Column("candidates", sa.JSON),
    )
    op.create_index("ix_licence_class", "licence", ["licence_class"])
    op.create_index("ix_licence_spdx", "licence", ["spdx"])
    op.create_table(
        "exclusion",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("source", sa.String(64)),
        sa.Column("external_id", sa.String(512)),
        sa.Column("author", sa.String(255)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "import_run",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("file_size", sa.BigInteger, nullable=False),
        sa.Column("file_mtime_ns", sa.BigInteger, nullable=False),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("finished_at", TZ),
        sa.Column("items_done", sa.Integer, nullable=False, server_default="0"),
        sa.Column("added", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated", sa.Integer, nullable=False, server_default="0"),
        sa.Column("unchanged", sa.Integer, nullable=False, server_default="0"),
        sa.Column("bad", sa.Integer, nullable=False, server_default="0"),
        sa.Column("excluded", sa.Integer, nullable=False, server_default="0"),
        sa.Column("complete", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_index("ix_import_run_path", "import_run", ["path"])
    op.create_table(
        "snapshot",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("filters", sa.JSON, nullable=False),
        sa.Column("policy_hash", sa.String(64)),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("entry_count", sa.Integer, nullable=False),
    )
    op.create_table(
        "snapshot_entry",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "snapshot_id", sa.Integer, sa.ForeignKey("snapshot.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("label", sa.Integer, nullable=False),
        sa.Column("program_id", sa.Integer, sa.ForeignKey("program.id"), nullable=False),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("program_version.id"), nullable=False),
        sa.Column("program_key", sa.Text, nullable=False),
        sa.Column("code_sha256", sa.String(64), nullable=False),
        sa.Column("dialect", sa.String(32), nullable=False),
        sa.Column("licence_spdx", sa.String(255), nullable=False),
        sa.Column("licence_class", sa.String(16), nullable=False),
        sa.Column("author", sa.String(255)),
        sa.Column("title", sa.Text),
        sa.Column("url", sa.Text),
        sa.UniqueConstraint("snapshot_id", "label", name="uq_snapshot_entry_label"),
    )
    # Programs whose code the search index has not seen yet: imports only add a row here, and the
    # index is brought up to date in bulk before the next code search (trigram indexing costs
    # more than the rest of an import together).
    op.create_table(
        "code_search_pending",
        sa.Column(
            "program_id", sa.Integer, sa.ForeignKey("program.id", ondelete="CASCADE"), primary_key=True
        ),
    )
    if op.get_bind().dialect.name == "sqlite":
        # Code search: a trigram index over each program's current code (rowid = program.id).
        op.execute("CREATE VIRTUAL TABLE program_code_fts USING fts5(code, tokenize='trigram')")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS program_code_fts")
    for table in (
        "code_search_pending",
        "snapshot_entry",
        "snapshot",
        "import_run",
        "exclusion",
        "licence",
        "provenance",
        "pass",
        "program_version",
        "program",
        "raw_document",
        "blob",
        "source",
    ):
        op.drop_table(table)
