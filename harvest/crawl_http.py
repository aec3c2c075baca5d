"""The crawl of a web source: the frontier's requests through the fetcher into the store.

Every request lives in the persistent frontier; a response is kept as a raw document, parsed
by the source, its programs stored (idempotently) and its follow-up requests queued, and only
then is the request marked done. Up to :data:`FLUSH_SIZE_PER_SLOT` requests per unit of
concurrency are on their way at once; what came back is written in one transaction when they all
have, or :data:`FLUSH_EVERY_S` after the first of them did (at polite rates a batch takes many
seconds), and the freed places are taken by the next requests. So a crawl killed at any moment
resumes with ``harvest crawl`` again: the requests in flight and the responses of the last
second are fetched again, and nothing written is.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode

from corpus.db import Catalogue
from corpus.errors import InputFormatError
from corpus.models import CrawlRequest
from corpus.records import ProgramRecord
from corpus.store import ProgramStore
from harvest.crawl_report import CrawlProgress, CrawlReport, finish
from harvest.fetcher import BudgetExhausted, Fetcher, FetchFailed, FetchPolicy, Response, SourceBlocked
from harvest.formats import clean_metadata, record_problem
from harvest.frontier import Frontier, NewRequest
from harvest.host_slots import HostSlots
from harvest.raw import store_raw_documents
from harvest.sources import CrawlSource, ErrorAnswer, Parsed

PROGRESS_EVERY_S = 0.5
#: Longest sleep of a crawl with nothing due while other crawls hold requests of its source.
IDLE_POLL_S = 1.0
#: Fetched responses wait at most this long for their transaction (a kill repeats them).
FLUSH_EVERY_S = 1.0
#: Requests on their way or not yet written, per unit of concurrency (the size of a transaction
#: when answers come fast).
FLUSH_SIZE_PER_SLOT = 4

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


def _epoch(when: datetime) -> float:
    """Seconds since the epoch; a date without a zone is UTC (as the catalogue stores it)."""
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _validators(request_id: int, status: int, etag: str | None, last_modified: str | None) -> dict:
    return {"id": request_id, "status": status, "etag": etag, "last_modified": last_modified}


class HttpCrawl:
    """One run of :func:`harvest.crawling.crawl` for a web source; :meth:`run` once."""

    def __init__(
        self,
        catalogue: Catalogue,
        source_name: str,
        source: CrawlSource,
        base: str,
        policy: FetchPolicy,
        *,
        key: str | None,
        options: dict,
        log: list | None,
        progress: Callable[[CrawlProgress], None] | None,
    ) -> None:
        self.catalogue, self.source, self.base, self.policy = catalogue, source, base, policy
        self.key, self.options, self.log, self.progress = key, options, log, progress
        self.report = CrawlReport(source_name)
        self.frontier = Frontier(catalogue, source_name)
        self.store = ProgramStore(catalogue, via=f"crawl:{source_name}")
        self.listing = _Listing(options.get("since"))
        self.fetcher: Fetcher | None = None

    async def run(self, limit: int | None) -> CrawlReport:
        """Crawl until the frontier is empty, ``limit`` programs are stored, or the site blocks us."""
        started = time.perf_counter()
        self.frontier.recover()
        # An unfinished crawl resumes where it was, fetching nothing done again. A finished one
        # starts again from its start pages (conditional GETs: they keep their validators), and
        # what they list that was fetched before is not fetched again.
        # (Other crawls of the source may be at work on it: then it is not finished either.)
        counts = self.frontier.counts()
        finished = counts["pending"] == 0 and counts["in_flight"] == 0
        self.frontier.add(self.source.start(self.base, self.options), refresh=finished)
        # the delay between requests to a host holds for every crawl on this catalogue
        async with Fetcher(self.policy, log=self.log, slots=HostSlots(self.catalogue)) as self.fetcher:
            # a transaction can wait a second at polite rates: the display hears of each request
            ticker = asyncio.create_task(_every(PROGRESS_EVERY_S, self._tell)) if self.progress else None
            renewer = asyncio.create_task(_every(self.frontier.lease_s / 3, self.frontier.renew))
            try:
                unfetched = await self._pipeline(limit)
            finally:
                renewer.cancel()
                if ticker is not None:
                    ticker.cancel()
        self.frontier.release([r.id for r in unfetched])  # stopped early: these stay queued
        return finish(self.catalogue, self.report, started)

    async def _pipeline(self, limit: int | None) -> list[CrawlRequest]:
        """Keep up to ``size`` requests going or unwritten, and write what came back once all
        of them have or :data:`FLUSH_EVERY_S` after the first arrived, whichever comes first
        (``limit`` is checked after each write, as the old whole-batch loop did). Returns the
        claimed requests it never started (at ``limit`` or when blocked)."""
        size = max(1, self.policy.concurrency) * FLUSH_SIZE_PER_SLOT
        ahead: list[CrawlRequest] = []  # claimed, not started
        going: dict[asyncio.Task, CrawlRequest] = {}
        arrived: list[tuple[CrawlRequest, object]] = []  # fetched (or failed), not yet written
        first_arrival = 0.0
        blocked: SourceBlocked | None = None
        while True:
            report = self.report
            stopping = (
                blocked is not None
                or report.budget_spent is not None
                or bool(limit and report.added + report.updated >= limit)
            )
            if not stopping:
                if len(ahead) < size:
                    # A claim walks the claim-order index and stops, so it is cheap: claim only what
                    # the next batch takes, leaving the rest to other crawls sharing the frontier.
                    # Requests claimed but not fetched when a crawl is killed are re-queued.
                    ahead += self.frontier.claim(size - len(ahead))
                while ahead and len(going) + len(arrived) < size and _may_start(ahead[0], going, arrived):
                    request = ahead.pop(0)
                    going[asyncio.create_task(self._fetch(request))] = request
            if not going and not arrived:
                if stopping:
                    break
                # nothing due: done, unless responses that did not parse wait for a retry or other
                # crawls hold requests (whose follow-ups may come, or whose crawl died)
                if self.frontier.recover():
                    continue
                wait = self.frontier.seconds_until_due()
                if wait is None:
                    break
                await asyncio.sleep(min(max(wait, 0.01), IDLE_POLL_S))
                continue
            if going:
                timeout = None if not arrived else max(0.0, first_arrival + FLUSH_EVERY_S - time.monotonic())
                done, _ = await asyncio.wait(going, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    outcome = task.exception() or task.result()
                    if not arrived:
                        first_arrival = time.monotonic()
                    arrived.append((going.pop(task), outcome))
                    if isinstance(outcome, SourceBlocked) and blocked is None:
                        blocked = outcome
                    if isinstance(outcome, BudgetExhausted):
                        report.budget_spent = outcome.message
            overdue = time.monotonic() - first_arrival >= FLUSH_EVERY_S
            if arrived and (not going or overdue or blocked is not None):
                with self.catalogue.session() as s:
                    self._settle(arrived, s.connection())
                arrived = []
                self._tell()
            if blocked is not None and not going and not arrived:
                # everything that was on its way is written: now park the rest of the source
                self.report.blocked = without_key(blocked.message, self.key)
                self.frontier.block(self.report.blocked)
                break
        return ahead

    async def _fetch(self, request: CrawlRequest) -> Response:
        assert self.fetcher is not None
        return await self.fetcher.fetch(
            _with_key(request.url, self.key),
            method=request.method,
            # Bodies in the frontier are form-encoded (Shadertoy's batch POST); a dict makes the
            # client send them as a form, with the Content-Type a site expects.
            data=dict(parse_qsl(request.body, keep_blank_values=True)) if request.body else None,
            etag=request.etag,
            last_modified=request.last_modified,
        )

    def _tell(self) -> None:
        if self.progress is not None and self.fetcher is not None:
            fetcher = self.fetcher
            self.progress(CrawlProgress(self.report, fetcher.requests_made, dict(fetcher.requests_by_host)))

    def _settle(self, arrived: list[tuple[CrawlRequest, object]], conn) -> None:
        """Write what arrived, inside one transaction: raw documents, programs, follow-up requests
        and frontier states each with one statement per table where possible (per-request
        statements cost more than the fetches at loopback speed)."""
        report, frontier = self.report, self.frontier
        done: list[dict] = []
        fetched: list[tuple[CrawlRequest, Response]] = []
        unsent: list[int] = []  # refused by the request budget: still to do, on the next run
        for request, outcome in arrived:
            if isinstance(outcome, SourceBlocked):
                continue
            if isinstance(outcome, BudgetExhausted):
                unsent.append(request.id)
                continue
            if isinstance(outcome, FetchFailed):
                error = without_key(outcome.message, self.key)
                frontier.fail(request.id, error, status=outcome.status, conn=conn)
                report.failed += 1
                report.last_failure = error
            elif isinstance(outcome, BaseException):
                raise outcome
            elif outcome.not_modified:
                done.append(_validators(request.id, 304, request.etag, request.last_modified))
                report.requests_done += 1
            elif outcome.status >= 400:
                frontier.fail(request.id, f"HTTP {outcome.status}", status=outcome.status, conn=conn)
                report.failed += 1
                report.last_failure = f"{request.url}: HTTP {outcome.status}"
            else:
                fetched.append((request, outcome))
        doc_ids = store_raw_documents(
            conn,
            self.store.source_id(conn, self.source.site),
            # never response.url: it may carry the API key
            [(q.url, r.status, r.headers.get("Content-Type"), r.content) for q, r in fetched],
        )
        items: list[ProgramRecord] = []
        follow: list[NewRequest] = []
        pages: list[Parsed] = []
        for (request, response), doc_id in zip(fetched, doc_ids, strict=True):
            try:
                parsed = self.source.parse(request.kind, request.url, response.content, self.base)
            except InputFormatError as exc:
                if self._parse_error(request, exc, doc_id, conn) == "failed":
                    report.parse_errors += 1
                continue
            parsed.records = self._storable(parsed.records, request.url)
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
        report.count(self.store.store(items, conn))
        self.listing.saw(items)
        frontier.add(follow, conn=conn)
        for parsed in pages:
            result = self.store.store(parsed.records, conn)
            report.count(result)
            self.listing.saw(parsed.records)
            if self.listing.past_since:
                continue  # a newest-first page after programs older than --since lists older ones
            queued = frontier.add(parsed.requests, conn=conn)
            if self.listing.goes_on(bool(result.added or result.updated or queued)):
                # a page fetched before is fetched again (conditionally): new programs push the
                # old ones onto later pages
                frontier.add(self.listing.next_pages(parsed.paging), conn=conn, refresh=True)
        frontier.done_many(done, conn=conn)
        frontier.release(unsent, conn=conn)

    def _storable(self, records: list[ProgramRecord], url: str) -> list[ProgramRecord]:
        """The records fit to store, their descriptive text made storable; the others are listed
        in the report (a lone surrogate in a title must not stop a crawl at every resume)."""
        kept = []
        for record in records:
            problem = record_problem(clean_metadata(record))
            if problem is None:
                kept.append(record)
            else:
                self.report.skipped.append(f"{record.key} ({url}): {problem}")
        return kept

    def _parse_error(self, request: CrawlRequest, exc: InputFormatError, doc_id: int, conn) -> str:
        """A response that arrived whole but does not parse: JSON cut short or an HTML error page
        from a flaky server is fetched again with backoff until the attempts run out (a changed
        layout then ends as a parse error); a site's clear no (:class:`ErrorAnswer`) is final.
        Every response is kept as a raw document. Returns the request's new state."""
        tries = f" after {request.attempts} attempts" if request.attempts > 1 else ""
        message = f"parse error: {exc.message}{tries} (raw document {doc_id} kept for reparse)"
        message = without_key(message, self.key)
        attempts = self.policy.max_attempts
        if isinstance(exc, ErrorAnswer) or request.attempts >= attempts:
            self.frontier.fail(request.id, message, conn=conn)
            self.report.last_failure = message
            return "failed"
        delay = self.policy.backoff(request.attempts)
        return self.frontier.retry_later(request.id, message, delay_s=delay, max_attempts=attempts, conn=conn)


def _may_start(request: CrawlRequest, going: dict, arrived: list) -> bool:
    """A request waits while one of a higher priority is on its way or not yet written: a
    listing's next page (queued below its items with ``--since``) must see their dates first."""
    pending = [*going.values(), *(q for q, _ in arrived)]
    return all(q.priority <= request.priority for q in pending)


async def _every(seconds: float, call: Callable[[], None]) -> None:
    """Call ``call`` every ``seconds`` until cancelled. A failure (a catalogue locked past its busy
    timeout) skips one call, not all later ones: a lease renewer that died silently would let
    other crawls take this one's requests and fetch them twice."""
    while True:
        await asyncio.sleep(seconds)
        try:
            call()
        except Exception:  # noqa: BLE001 - the next call may succeed; a lease outlives a few misses
            continue
