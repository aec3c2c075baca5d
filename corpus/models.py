"""SQLAlchemy models of the catalogue.

The schema changes only through Alembic migrations (``migrations/versions``); these models
describe the head revision and are what queries use. A program is identified by
``(source, external_id)``; its code lives in content-addressed :class:`Blob` rows and in
:class:`ProgramVersion` rows (one per distinct program code hash), so a snapshot that pinned a
version keeps its exact code after a re-crawl changes the program.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Source(Base):
    """A site or origin that programs come from (``shadertoy``, ``glslsandbox``, ``dir`` …)."""

    __tablename__ = "source"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    base_url: Mapped[str | None] = mapped_column(String(512))
    default_licence: Mapped[str | None] = mapped_column(String(128))
    terms_url: Mapped[str | None] = mapped_column(String(512))


class Blob(Base):
    """Content-addressed code text: ``sha256`` of the exact UTF-8 bytes."""

    __tablename__ = "blob"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)


class RawDocument(Base):
    """What a source returned (gzip), kept so parsers can be re-run without the network."""

    __tablename__ = "raw_document"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("source.id"))
    url: Mapped[str] = mapped_column(Text)
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[int | None] = mapped_column(Integer)
    content_type: Mapped[str | None] = mapped_column(String(255))
    body_gzip: Mapped[bytes] = mapped_column(LargeBinary)
    body_sha256: Mapped[str] = mapped_column(String(64))


class Program(Base):
    """One program at one source; the current code is ``code_sha256`` (a :class:`ProgramVersion`)."""

    __tablename__ = "program"
    __table_args__ = (
        UniqueConstraint("source_id", "external_id", name="uq_program_source_external"),
        Index("ix_program_norm_sha256", "norm_sha256"),
        Index("ix_program_author", "author"),
        Index("ix_program_author_key", "author_key"),
        Index("ix_program_dialect", "dialect"),
        Index("ix_program_duplicate_of", "duplicate_of_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("source.id"))
    external_id: Mapped[str] = mapped_column(String(512))
    url: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(String(255))
    #: ``corpus.records.author_key(author)``: what --author, takedowns and snapshots compare
    author_key: Mapped[str | None] = mapped_column(String(1024))
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list | None] = mapped_column(JSON)
    created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    dialect: Mapped[str] = mapped_column(String(32))
    code_sha256: Mapped[str] = mapped_column(String(64))
    norm_sha256: Mapped[str] = mapped_column(String(64))
    parent_ref: Mapped[str | None] = mapped_column(String(512))
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("program.id", ondelete="SET NULL"))
    duplicate_kind: Mapped[str | None] = mapped_column(String(16))
    duplicate_score: Mapped[float | None] = mapped_column(Float)
    raw_document_id: Mapped[int | None] = mapped_column(ForeignKey("raw_document.id", ondelete="SET NULL"))
    extra: Mapped[dict | None] = mapped_column(JSON)


class ProgramVersion(Base):
    """A distinct code of a program; passes hang off it. Never deleted while a snapshot pins it."""

    __tablename__ = "program_version"
    __table_args__ = (UniqueConstraint("program_id", "code_sha256", name="uq_version_program_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("program.id", ondelete="CASCADE"))
    code_sha256: Mapped[str] = mapped_column(String(64))
    dialect: Mapped[str] = mapped_column(String(32))
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RenderPass(Base):
    """One ordered pass of a program version, with its normalised inputs."""

    __tablename__ = "pass"
    __table_args__ = (UniqueConstraint("version_id", "position", name="uq_pass_version_position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("program_version.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(16))
    code_sha256: Mapped[str] = mapped_column(ForeignKey("blob.sha256"))
    inputs: Mapped[list] = mapped_column(JSON)


class Provenance(Base):
    """Where and when a program's code was seen: a file location or URL, maybe a raw document."""

    __tablename__ = "provenance"
    __table_args__ = (UniqueConstraint("program_id", "location", "code_sha256", name="uq_provenance_seen"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("program.id", ondelete="CASCADE"))
    code_sha256: Mapped[str] = mapped_column(String(64))
    via: Mapped[str] = mapped_column(String(32))
    location: Mapped[str] = mapped_column(Text)
    raw_document_id: Mapped[int | None] = mapped_column(ForeignKey("raw_document.id", ondelete="SET NULL"))
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Licence(Base):
    """The licence verdict for a program's current code, with its evidence and the alternatives."""

    __tablename__ = "licence"
    __table_args__ = (Index("ix_licence_class", "licence_class"), Index("ix_licence_spdx", "spdx"))

    program_id: Mapped[int] = mapped_column(ForeignKey("program.id", ondelete="CASCADE"), primary_key=True)
    code_sha256: Mapped[str] = mapped_column(String(64))
    spdx: Mapped[str] = mapped_column(String(255))
    licence_class: Mapped[str] = mapped_column(String(16))
    evidence: Mapped[str] = mapped_column(String(32))
    matched_text: Mapped[str | None] = mapped_column(Text)
    score: Mapped[float] = mapped_column(Float)
    engine: Mapped[str] = mapped_column(String(32))
    candidates: Mapped[list | None] = mapped_column(JSON)


class CodeSearchPending(Base):
    """A program whose current code is not yet in the code-search index."""

    __tablename__ = "code_search_pending"

    program_id: Mapped[int] = mapped_column(ForeignKey("program.id", ondelete="CASCADE"), primary_key=True)


class Exclusion(Base):
    """A takedown: a program or a whole author kept out of crawls and snapshots."""

    __tablename__ = "exclusion"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str | None] = mapped_column(String(64))
    external_id: Mapped[str | None] = mapped_column(String(512))
    author: Mapped[str | None] = mapped_column(String(255))
    #: ``corpus.records.author_key(author)``, compared with ``program.author_key``
    author_key: Mapped[str | None] = mapped_column(String(1024))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ImportRun(Base):
    """One ``harvest import`` of one file: what it did and how far it got (for resuming)."""

    __tablename__ = "import_run"
    __table_args__ = (Index("ix_import_run_path", "path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(32))
    file_size: Mapped[int] = mapped_column(BigInteger)
    file_mtime_ns: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    items_done: Mapped[int] = mapped_column(Integer, default=0)
    added: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    bad: Mapped[int] = mapped_column(Integer, default=0)
    excluded: Mapped[int] = mapped_column(Integer, default=0)
    complete: Mapped[bool] = mapped_column(Boolean, default=False)


class Snapshot(Base):
    """A frozen, named selection of program versions; immutable once created."""

    __tablename__ = "snapshot"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    filters: Mapped[dict] = mapped_column(JSON)
    policy_hash: Mapped[str | None] = mapped_column(String(64))
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    entry_count: Mapped[int] = mapped_column(Integer)


class SnapshotEntry(Base):
    """One program of a snapshot, with every field its manifest line needs frozen in place."""

    __tablename__ = "snapshot_entry"
    __table_args__ = (UniqueConstraint("snapshot_id", "label", name="uq_snapshot_entry_label"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("snapshot.id", ondelete="CASCADE"))
    label: Mapped[int] = mapped_column(Integer)
    program_id: Mapped[int] = mapped_column(ForeignKey("program.id"))
    version_id: Mapped[int] = mapped_column(ForeignKey("program_version.id"))
    program_key: Mapped[str] = mapped_column(Text)
    code_sha256: Mapped[str] = mapped_column(String(64))
    dialect: Mapped[str] = mapped_column(String(32))
    licence_spdx: Mapped[str] = mapped_column(String(255))
    licence_class: Mapped[str] = mapped_column(String(16))
    author: Mapped[str | None] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)


class CrawlRequest(Base):
    """One request of the crawl frontier (see :mod:`harvest.frontier`)."""

    __tablename__ = "crawl_request"
    __table_args__ = (
        Index("ix_crawl_request_claim", "source", "state", "next_attempt_at"),
        # claim order, covering the due time: a claim walks it and stops (migration 0004)
        Index(
            "ix_crawl_request_claim_order", "source", "state", text("priority DESC"), "id", "next_attempt_at"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(Text)
    method: Mapped[str] = mapped_column(String(8), default="GET")
    body: Mapped[str | None] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str | None] = mapped_column(String(32))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: The crawl process an ``in_flight`` request is leased to (its ``next_attempt_at`` is then
    #: the lease's expiry), so crawls sharing a frontier requeue only a dead one's requests.
    holder: Mapped[str | None] = mapped_column(String(64))


class Validation(Base):
    """What one renderer made of one program code: its status, the driver's log and timings.

    Keyed by code hash, dialect and renderer string (vendor | renderer | version): duplicates share
    one validation, a new code gets its own, and a different driver validates again.
    """

    __tablename__ = "validation"
    __table_args__ = (
        UniqueConstraint("code_sha256", "dialect", "renderer", name="uq_validation_code_renderer"),
        Index("ix_validation_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_sha256: Mapped[str] = mapped_column(String(64))
    dialect: Mapped[str] = mapped_column(String(32))
    renderer: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    log: Mapped[str | None] = mapped_column(Text)
    compile_ms: Mapped[float | None] = mapped_column(Float)
    first_frame_ms: Mapped[float | None] = mapped_column(Float)
    standins: Mapped[list | None] = mapped_column(JSON)
    validated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Profile(Base):
    """Speed and image statistics of a validated (``ok``) program at one resolution."""

    __tablename__ = "profile"
    __table_args__ = (UniqueConstraint("validation_id", "width", "height", name="uq_profile_size"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    validation_id: Mapped[int] = mapped_column(ForeignKey("validation.id", ondelete="CASCADE"))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    frame_ms_median: Mapped[float] = mapped_column(Float)
    frame_ms_p90: Mapped[float] = mapped_column(Float)
    nonfinite_share: Mapped[float] = mapped_column(Float)
    colourfulness: Mapped[float] = mapped_column(Float)
    entropy: Mapped[float] = mapped_column(Float)
    jpeg_complexity: Mapped[float] = mapped_column(Float)
    coverage: Mapped[float] = mapped_column(Float)
    temporal_change: Mapped[float] = mapped_column(Float)
    diversity: Mapped[float] = mapped_column(Float)
    stats: Mapped[dict | None] = mapped_column(JSON)


class Vetting(Base):
    """A vetting policy's verdict on a program's current code, with the policy's hash and reasons.

    Stored, not computed at query time: a changed policy changes nothing until ``render vet``.
    """

    __tablename__ = "vetting"
    __table_args__ = (Index("ix_vetting_vetted", "vetted"),)

    program_id: Mapped[int] = mapped_column(ForeignKey("program.id", ondelete="CASCADE"), primary_key=True)
    code_sha256: Mapped[str] = mapped_column(String(64))
    renderer: Mapped[str] = mapped_column(String(255))
    policy_hash: Mapped[str] = mapped_column(String(64))
    vetted: Mapped[bool] = mapped_column(Boolean)
    reasons: Mapped[list] = mapped_column(JSON)
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ValidationJob(Base):
    """One code waiting for (or given to) a validator: the queue ``render validate`` shares.

    Keyed like a validation (code, dialect, renderer). A validator claims a job by writing its
    ``holder`` id and a lease expiry; it renews the lease while it works and stores the result
    only while it still holds it, stamping ``finished_at``. A lease that expires (its validator
    died) makes the job claimable again (:mod:`corpus.validation_queue`, migration 0007).
    """

    __tablename__ = "validation_job"
    __table_args__ = (
        UniqueConstraint("code_sha256", "dialect", "renderer", name="uq_validation_job_code_renderer"),
        # the open jobs in claim order: a claim walks it and stops after the rows it takes
        Index(
            "ix_validation_job_open",
            "renderer",
            "id",
            "expires_at",
            sqlite_where=text("finished_at IS NULL"),
            postgresql_where=text("finished_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_sha256: Mapped[str] = mapped_column(String(64))
    dialect: Mapped[str] = mapped_column(String(32))
    renderer: Mapped[str] = mapped_column(String(255))
    program_id: Mapped[int] = mapped_column(ForeignKey("program.id", ondelete="CASCADE"))
    holder: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    queued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class HostSlot(Base):
    """When the next request to a host may start, shared by every crawl process of a catalogue:
    politeness that holds across processes and machines (:mod:`harvest.host_slots`)."""

    __tablename__ = "host_slot"

    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    next_allowed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
