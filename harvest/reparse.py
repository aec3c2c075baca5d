"""``harvest reparse``: programs rebuilt from the raw documents a crawl kept, with no network."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import select

from corpus.db import Catalogue
from corpus.errors import ImageProgramsError, InputFormatError
from corpus.models import CrawlRequest
from corpus.store import ProgramStore, mark_exact_duplicates
from harvest.frontier import canonical_url, fingerprint
from harvest.raw import iter_raw_documents
from harvest.sources import CRAWL_SOURCES, git, source_and_base


@dataclass
class ReparseReport:
    source: str
    documents: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    parse_errors: int = 0

    def to_json(self) -> dict:
        return asdict(self)


def reparse(catalogue: Catalogue, source_name: str, *, base_url: str | None = None) -> ReparseReport:
    """Rebuild programs from the raw documents a source returned, with no network (after a
    parser fix). Follow-up requests a page would yield are not queued: that is a crawl's job."""
    if isinstance(CRAWL_SOURCES.get(source_name), git.GitRepositories):
        raise ImageProgramsError(
            "git crawls keep a checkout, not raw documents: there is nothing to reparse",
            hint="run harvest crawl git --base-url URL again; it reads every file anew",
        )
    source, base = source_and_base(source_name, base_url)
    store = ProgramStore(catalogue, via=f"reparse:{source_name}")
    report = ReparseReport(source_name)
    with catalogue.session() as s:
        requested = s.execute(
            select(CrawlRequest.fingerprint, CrawlRequest.kind, CrawlRequest.url).where(
                CrawlRequest.source == source_name
            )
        ).all()
    kinds = {fp: kind for fp, kind, _ in requested}
    # Two crawl sources may share a site (shadertoy-api and shadertoy-site): parse only the
    # documents this one fetched.
    urls = {canonical_url(url) for *_, url in requested}
    for doc_id, url, _status, body in iter_raw_documents(catalogue, source.site):
        if canonical_url(url) not in urls:
            continue
        report.documents += 1
        try:
            parsed = source.parse(kinds.get(fingerprint("GET", url)), url, body, base)
        except InputFormatError:
            report.parse_errors += 1
            continue
        for record in parsed.records:
            record.raw_document_id = doc_id
        with catalogue.session() as s:
            result = store.store(parsed.records, s.connection())
        report.added += result.added
        report.updated += result.updated
        report.unchanged += result.unchanged
    with catalogue.session() as s:
        mark_exact_duplicates(s.connection())
    return report
