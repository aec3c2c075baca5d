"""``harvest crawl``: drive one source through the frontier, the fetcher and the store.

Every request lives in the persistent frontier; a response is kept as a raw document, parsed
by the source, its programs stored (idempotently) and its follow-up requests queued, and only
then is the request marked done. So a crawl killed at any moment resumes with
``harvest crawl`` again: requests in flight are retried, nothing done is fetched again.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import select

from corpus.db import Catalogue, refresh_statistics
from corpus.errors import ImageProgramsError, InputFormatError
from corpus.models import CrawlRequest
from corpus.records import ProgramRecord
from corpus.store import ProgramStore, mark_exact_duplicates
from harvest.fetcher import Fetcher, FetchFailed, FetchPolicy, Response, SourceBlocked
from harvest.frontier import Frontier, NewRequest, canonical_url, fingerprint
from harvest.importers import BadRecord
from harvest.raw import iter_raw_documents, store_raw_documents
from harvest.sources import CRAWL_SOURCES, ErrorAnswer, git


@dataclass
class CrawlReport:
    source: str
    requests_done: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    excluded: int = 0
    failed: int = 0
    parse_errors: int = 0
    blocked: str | None = None
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)  # "where: why" of what a source left out

    def to_json(self) -> dict:
        return asdict(self)


PROGRESS_EVERY_S = 0.5


@dataclass
class CrawlProgress:
    """What a live display shows after each batch: the report so far and requests per host."""

    report: CrawlReport
    requests: int  # HTTP requests made, retries and robots.txt included
    requests_by_host: dict[str, int]


class _Listing:
    """Whether a site's listing (paged, newest first) is worth paging on.

    A page is followed by the next only while it brings news: a program added or changed, or a
    request never queued before (a site's result counts lie, and some repeat their last page
    forever). With ``since`` (UTC epoch seconds), once a batch's dated programs are all older,
    the listing has gone past the date and no further page is queued.
    """

    def __init__(self, since: float | None) -> None:
        self.since = since
        self.past_since = False

    def saw(self, records: list[ProgramRecord]) -> None:
        if self.since is None:
            return
        dated = [_epoch(r.created_at) for r in records if r.created_at is not None]
        if dated and max(dated) < self.since:
            self.past_since = True

    def goes_on(self, brought_news: bool) -> bool:
        return brought_news and not self.past_since

    def next_pages(self, paging: list[NewRequest]) -> list[NewRequest]:
        """With ``since``, a next page waits below the items already queued, so their dates are
        known before the listing goes on."""
        return [replace(r, priority=-1) for r in paging] if self.since is not None else paging


def crawl(
    catalogue: Catalogue,
    source_name: str,
    *,
    base_url: str | None = None,
    policy: FetchPolicy | None = None,
    limit: int | None = None,
    log: list | None = None,
    key: str | None = None,
    options: dict | None = None,
    progress: Callable[[CrawlProgress], None] | None = None,
) -> CrawlReport:
    """Crawl ``source_name`` until its frontier is empty, ``limit`` programs are stored, or the
    site blocks us (then the report says why and the source's requests are parked as blocked)."""
    source, base = _source_and_base(source_name, base_url)
    if isinstance(source, git.GitRepositories):
        return _crawl_repository(catalogue, source_name, base, limit, options or {})
    if source.needs_key and not key:
        raise ImageProgramsError(
            f"{source_name} needs an API key",
            hint="pass --key KEY or set SHADERTOY_API_KEY (or import a dump instead)",
        )
    policy = policy or FetchPolicy()
    return asyncio.run(
        _crawl(catalogue, source_name, source, base, policy, limit, log, key, options or {}, progress)
    )


def _source_and_base(source_name: str, base_url: str | None):
    """The crawl source named ``source_name`` and the base URL to use with it."""
    if source_name not in CRAWL_SOURCES:
        raise ImageProgramsError(
            f"unknown crawl source {source_name!r}", hint=f"use one of: {', '.join(CRAWL_SOURCES)}"
        )
    source = CRAWL_SOURCES[source_name]
    base = base_url or source.default_base_url
    if not base:
        raise ImageProgramsError(
            f"{source_name} has no default address", hint="pass --base-url (for git: the repository URL)"
        )
    return source, base.rstrip("/")


#: The value of a ``key=`` URL parameter: keys go out form-encoded (letters, digits, ``_.-~``,
#: ``+`` and ``%XX``), so the first other character ends it.
_KEY_PARAMETER = re.compile(r"(?<=[?&]key=)[A-Za-z0-9_.~+%-]+")
#: A key shorter than this is masked only as a URL parameter: as a bare word it could be any word.
_MIN_MASKED_KEY = 4


def without_key(text: str, key: str | None) -> str:
    """``text`` (an error to store or show) with the API key masked as ``***``: the value of every
    ``key=`` URL parameter, and the key itself where it stands as a whole word (a site that echoes
    it in an error body). Nothing else is touched, so a short key does not garble the message."""
    text = _KEY_PARAMETER.sub("***", text)
    if key and len(key) >= _MIN_MASKED_KEY:
        text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(key)}(?![A-Za-z0-9])", "***", text)
    return text


def _with_key(url: str, key: str | None) -> str:
    if not key:
        return url
    return f"{url}{'&' if '?' in url else '?'}{urlencode({'key': key})}"


async def _crawl(
    catalogue, source_name, source, base, policy, limit, log, key, options, progress
) -> CrawlReport:
    report = CrawlReport(source_name)
    started = time.perf_counter()
    frontier = Frontier(catalogue, source_name)
    frontier.recover()
    # An unfinished crawl resumes where it was, fetching nothing done again. A finished one
    # starts again from its start pages (conditional GETs: they keep their validators), and
    # what they list that was fetched before is not fetched again.
    finished = frontier.counts()["pending"] == 0
    frontier.add(source.start(base, options), refresh=finished)
    store = ProgramStore(catalogue, via=f"crawl:{source_name}")
    listing = _Listing(options.get("since"))

    def redact(text: str) -> str:
        return without_key(text, key)

    async def fetch(request):
        return await fetcher.fetch(
            _with_key(request.url, key),
            method=request.method,
            # Bodies in the frontier are form-encoded (Shadertoy's batch POST); a dict makes the
            # client send them as a form, with the Content-Type a site expects.
            data=dict(parse_qsl(request.body, keep_blank_values=True)) if request.body else None,
            etag=request.etag,
            last_modified=request.last_modified,
        )

    def count(result) -> None:
        report.added += result.added
        report.updated += result.updated
        report.unchanged += result.unchanged
        report.excluded += result.excluded

    def parse_error(request: CrawlRequest, exc: InputFormatError, doc_id: int, conn) -> str:
        """A response that arrived whole but does not parse: JSON cut short or an HTML error page
        from a flaky server is fetched again with backoff until the attempts run out (a changed
        layout then ends as a parse error); a site's clear no (:class:`ErrorAnswer`) is final.
        Every response is kept as a raw document. Returns the request's new state."""
        tries = f" after {request.attempts} attempts" if request.attempts > 1 else ""
        message = redact(f"parse error: {exc.message}{tries} (raw document {doc_id} kept for reparse)")
        if isinstance(exc, ErrorAnswer) or request.attempts >= policy.max_attempts:
            frontier.fail(request.id, message, conn=conn)
            return "failed"
        delay = policy.backoff(request.attempts)
        return frontier.retry_later(
            request.id, message, delay_s=delay, max_attempts=policy.max_attempts, conn=conn
        )

    def settle(batch: list[CrawlRequest], outcomes: list, conn) -> None:
        """Write what a claimed batch came to, inside its one transaction: raw documents, programs,
        follow-up requests and frontier states each with one statement per table where possible
        (per-request statements cost more than the fetches at loopback speed)."""
        done: list[dict] = []
        fetched: list[tuple[CrawlRequest, Response]] = []
        for request, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, SourceBlocked):
                continue
            if isinstance(outcome, FetchFailed):
                frontier.fail(request.id, redact(outcome.message), status=outcome.status, conn=conn)
                report.failed += 1
            elif isinstance(outcome, BaseException):
                raise outcome
            elif outcome.not_modified:
                done.append(_validators(request.id, 304, request.etag, request.last_modified))
                report.requests_done += 1
            elif outcome.status >= 400:
                frontier.fail(request.id, f"HTTP {outcome.status}", status=outcome.status, conn=conn)
                report.failed += 1
            else:
                fetched.append((request, outcome))
        doc_ids = store_raw_documents(
            conn,
            store.source_id(conn, source.site),
            # never response.url: it may carry the API key
            [(q.url, r.status, r.headers.get("Content-Type"), r.content) for q, r in fetched],
        )
        items: list[ProgramRecord] = []
        follow: list[NewRequest] = []
        pages = []
        for (request, response), doc_id in zip(fetched, doc_ids, strict=True):
            try:
                parsed = source.parse(request.kind, request.url, response.content, base)
            except InputFormatError as exc:
                if parse_error(request, exc, doc_id, conn) == "failed":
                    report.parse_errors += 1
                continue
            for record in parsed.records:
                record.raw_document_id = doc_id
            if parsed.paging:
                pages.append(parsed)  # settled on its own: paging on depends on its own news
            else:
                items.extend(parsed.records)
                follow.extend(parsed.requests)
            etag, modified = response.headers.get("ETag"), response.headers.get("Last-Modified")
            done.append(_validators(request.id, response.status, etag, modified))
            report.requests_done += 1
        count(store.store(items, conn))
        listing.saw(items)
        frontier.add(follow, conn=conn)
        for parsed in pages:
            result = store.store(parsed.records, conn)
            count(result)
            listing.saw(parsed.records)
            if listing.past_since:
                continue  # a newest-first page after programs older than --since lists older ones
            queued = frontier.add(parsed.requests, conn=conn)
            if listing.goes_on(bool(result.added or result.updated or queued)):
                # a page fetched before is fetched again (conditionally): new programs push the
                # old ones onto later pages
                frontier.add(listing.next_pages(parsed.paging), conn=conn, refresh=True)
        frontier.done_many(done, conn=conn)

    size = max(1, policy.concurrency) * 4
    ahead: list[CrawlRequest] = []
    async with Fetcher(policy, log=log) as fetcher:

        def tell() -> None:
            if progress is not None:
                progress(CrawlProgress(report, fetcher.requests_made, dict(fetcher.requests_by_host)))

        # a batch can take many seconds at polite rates: the display hears of each request
        ticker = asyncio.create_task(_every(PROGRESS_EVERY_S, tell)) if progress is not None else None
        try:
            while not (limit and report.added + report.updated >= limit):
                if len(ahead) < size:
                    # A claim sorts the pending requests, so claim a few batches at once; requests
                    # claimed but not fetched when a crawl is killed are re-queued by the next one.
                    ahead += frontier.claim(size * 4 - len(ahead))
                batch, ahead = ahead[:size], ahead[size:]
                if not batch:
                    # nothing due: done, unless responses that did not parse wait for a retry
                    wait = frontier.seconds_until_due()
                    if wait is None:
                        break
                    await asyncio.sleep(max(wait, 0.01))
                    continue
                outcomes = await asyncio.gather(*(fetch(r) for r in batch), return_exceptions=True)
                # One transaction per batch: its raw documents, programs and frontier updates commit
                # together, so a kill loses at most the batch, whose requests are then retried.
                with catalogue.session() as s:
                    settle(batch, outcomes, s.connection())
                tell()
                blocked = [o for o in outcomes if isinstance(o, SourceBlocked)]
                if blocked:
                    report.blocked = redact(blocked[0].message)
                    frontier.block(report.blocked)
                    break
        finally:
            if ticker is not None:
                ticker.cancel()
    frontier.release([r.id for r in ahead])  # stopped at --limit: what was not fetched stays queued
    return _finish(catalogue, report, started)


async def _every(seconds: float, call: Callable[[], None]) -> None:
    while True:
        await asyncio.sleep(seconds)
        call()


def _epoch(when: datetime) -> float:
    """Seconds since the epoch; a date without a zone is UTC (as the catalogue stores it)."""
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _validators(request_id: int, status: int, etag: str | None, last_modified: str | None) -> dict:
    return {"id": request_id, "status": status, "etag": etag, "last_modified": last_modified}


def _crawl_repository(catalogue, source_name: str, url: str, limit: int | None, options: dict) -> CrawlReport:
    """Sync a git repository into the cache folder and store its shader files; files the
    reader skips (too large, a symlink out of the checkout, not UTF-8) are listed in the report."""
    report = CrawlReport(source_name)
    started = time.perf_counter()
    cache = options.get("cache_dir") or git.default_cache_dir(catalogue.engine.url.database)
    checkout = git.sync(url, Path(cache), timeout=options.get("git_timeout") or git.GIT_TIMEOUT)
    report.requests_done = 1
    store = ProgramStore(catalogue, via=f"crawl:{source_name}")
    batch: list = []
    size = min(500, limit or 500)
    for item in chain(git.read_checkout(checkout), [None]):  # None: the end, store what is left
        if isinstance(item, BadRecord):
            report.parse_errors += 1
            report.skipped.append(f"{item.location}: {item.reason}")
            continue
        if item is not None:
            batch.append(item)
        if batch and (item is None or len(batch) >= size):
            with catalogue.session() as s:
                result = store.store(batch, s.connection())
            report.added, report.updated = report.added + result.added, report.updated + result.updated
            report.unchanged += result.unchanged
            report.excluded += result.excluded
            batch = []
            if limit and report.added + report.updated >= limit:
                break
    return _finish(catalogue, report, started)


def _finish(catalogue: Catalogue, report: CrawlReport, started: float) -> CrawlReport:
    """Mark exact duplicates among what the crawl stored, refresh statistics, time the report."""
    with catalogue.session() as s:
        mark_exact_duplicates(s.connection())
    refresh_statistics(catalogue)
    report.seconds = time.perf_counter() - started
    return report


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
    source, base = _source_and_base(source_name, base_url)
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
