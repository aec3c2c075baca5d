"""Raw documents: what a source returned, kept gzip-compressed so parsers can run again offline."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime

from sqlalchemy import Connection, insert, select

from corpus.db import Catalogue, translate_db_errors
from corpus.models import RawDocument, Source


def store_raw_documents(
    conn: Connection, source_id: int, documents: list[tuple[str, int | None, str | None, bytes]]
) -> list[int]:
    """Keep a batch of responses, each ``(url, status, content type, body)``, in one statement;
    returns their ids in the same order (a crawl writes a claimed batch at once)."""
    if not documents:
        return []
    now = datetime.now(UTC)
    rows = [
        {
            "source_id": source_id,
            "url": url,
            "fetched_at": now,
            "status": status,
            "content_type": content_type,
            "body_gzip": gzip.compress(body, compresslevel=6),
            "body_sha256": hashlib.sha256(body).hexdigest(),
        }
        for url, status, content_type, body in documents
    ]
    result = conn.execute(insert(RawDocument).returning(RawDocument.id, sort_by_parameter_order=True), rows)
    return list(result.scalars())


def iter_raw_documents(catalogue: Catalogue, source: str) -> Iterator[tuple[int, str, int | None, bytes]]:
    """(id, url, status, body) of every raw document of a site, oldest first (for reparse)."""
    with translate_db_errors(catalogue.url), catalogue.engine.connect() as conn:
        rows = conn.execute(
            select(RawDocument.id, RawDocument.url, RawDocument.status, RawDocument.body_gzip)
            .join(Source, Source.id == RawDocument.source_id)
            .where(Source.name == source)
            .order_by(RawDocument.id)
        )
        for doc_id, url, status, body in rows:
            yield doc_id, url, status, gzip.decompress(body)
