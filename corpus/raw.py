"""Raw documents: what a source returned, kept gzip-compressed so parsers can run again offline."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime

from sqlalchemy import Connection, insert, select

from corpus.db import Catalogue
from corpus.models import RawDocument, Source


def store_raw_document(
    conn: Connection, source_id: int, url: str, status: int | None, content_type: str | None, body: bytes
) -> int:
    """Keep one response; returns its id (recorded on the programs parsed from it)."""
    return conn.execute(
        insert(RawDocument).returning(RawDocument.id),
        {
            "source_id": source_id,
            "url": url,
            "fetched_at": datetime.now(UTC),
            "status": status,
            "content_type": content_type,
            "body_gzip": gzip.compress(body, compresslevel=6),
            "body_sha256": hashlib.sha256(body).hexdigest(),
        },
    ).scalar_one()


def iter_raw_documents(catalogue: Catalogue, source: str) -> Iterator[tuple[int, str, int | None, bytes]]:
    """(id, url, status, body) of every raw document of a site, oldest first (for reparse)."""
    with catalogue.engine.connect() as conn:
        rows = conn.execute(
            select(RawDocument.id, RawDocument.url, RawDocument.status, RawDocument.body_gzip)
            .join(Source, Source.id == RawDocument.source_id)
            .where(Source.name == source)
            .order_by(RawDocument.id)
        )
        for doc_id, url, status, body in rows:
            yield doc_id, url, status, gzip.decompress(body)
