"""The crawl frontier: every request a crawl makes, persisted, so that a killed crawl resumes.

A request is identified by its fingerprint (method, canonical URL, body), so adding the same
request twice is a no-op and nothing done is fetched again. Its life:

``pending`` → (claimed) ``in_flight`` → ``done`` | ``pending`` again with a later
``next_attempt_at`` (a retry) | ``failed`` (attempts exhausted or not retryable) | ``blocked``
(the site said no: a bot challenge or a block page stops the whole source).

A claimed request is leased to its crawl process (``holder``; ``next_attempt_at`` is the lease's
expiry while it is ``in_flight``), and the crawl renews its leases while it works. A crawl killed
while requests are in flight leaves them ``in_flight``; :meth:`Frontier.recover` puts them back
to ``pending`` once their holder is known dead (a process of this machine that no longer runs)
or their lease has expired, so several crawls can share one frontier and finish a dead one's
requests without fetching a live one's again. Claiming is one ``UPDATE … WHERE id IN
(SELECT … LIMIT n) RETURNING``, atomic on SQLite and ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
several workers can share one frontier. The frontier's SQL lives here; its table, like every
table, is declared in :mod:`corpus.models`.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import Connection, bindparam, func, select, update

from corpus.db import Catalogue, claim_need_not_be_durable, lease_holder, lease_holder_is_gone
from corpus.models import CrawlRequest
from corpus.store import insert_or_ignore

STATES = ("pending", "in_flight", "done", "failed", "blocked")

#: Seconds a claimed request stays leased to its crawl without renewal (renewed every third).
LEASE_S = 60.0


def canonical_url(url: str) -> str:
    """Scheme and host lower-cased, default port and fragment dropped, query parameters sorted."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    query = urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True)))
    return urlunsplit((scheme, host, parts.path or "/", query, ""))


def fingerprint(method: str, url: str, body: str | None = None) -> str:
    """What makes two requests the same request (Scrapy's idea): method, canonical URL, body."""
    payload = "\n".join((method.upper(), canonical_url(url), body or ""))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class NewRequest:
    """A request a source wants made."""

    url: str
    method: str = "GET"
    body: str | None = None
    kind: str | None = None
    priority: int = 0


class Frontier:
    """The frontier of one crawl source (``shadertoy-api``, ``glslsandbox`` …)."""

    def __init__(self, catalogue: Catalogue, source: str, *, lease_s: float = LEASE_S) -> None:
        self.catalogue = catalogue
        self.source = source
        self.lease_s = lease_s
        self.holder = lease_holder()

    @contextlib.contextmanager
    def _connection(self, conn: Connection | None) -> Iterator[Connection]:
        """The caller's transaction when it passes one (a crawl commits a whole batch at once),
        else a transaction of our own."""
        if conn is not None:
            yield conn
            return
        with self.catalogue.session() as s:
            yield s.connection()

    def add(
        self,
        requests: Iterable[NewRequest],
        *,
        now: datetime | None = None,
        conn: Connection | None = None,
        refresh: bool = False,
    ) -> int:
        """Queue requests not seen before (by fingerprint); returns how many were new.

        ``refresh`` also queues again those already done (a site's start and listing pages, which
        change): they keep their ETag and Last-Modified, so fetching them again is a conditional
        GET. Failed and blocked requests are left alone (``retry-failed`` is for those).
        """
        now = now or datetime.now(UTC)
        rows = {}
        for r in requests:
            fp = fingerprint(r.method, r.url, r.body)
            rows.setdefault(
                fp,
                {
                    "source": self.source,
                    "url": r.url,
                    "method": r.method.upper(),
                    "body": r.body,
                    "fingerprint": fp,
                    "kind": r.kind,
                    "priority": r.priority,
                    "state": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "updated_at": now,
                },
            )
        if not rows:
            return 0
        with self._connection(conn) as c:
            before = c.execute(
                select(func.count()).select_from(CrawlRequest).where(CrawlRequest.fingerprint.in_(list(rows)))
            ).scalar_one()
            insert_or_ignore(c, CrawlRequest.__table__, list(rows.values()), ["fingerprint"])
            if refresh and before:
                table = CrawlRequest.__table__
                c.execute(
                    update(table)
                    .where(table.c.fingerprint == bindparam("fp"), table.c.state == "done")
                    .values(
                        state="pending",
                        attempts=0,
                        priority=bindparam("prio"),
                        next_attempt_at=now,
                        updated_at=now,
                    ),
                    [{"fp": fp, "prio": row["priority"]} for fp, row in rows.items()],
                )
        return len(rows) - before

    def _due(self, limit: int, now: datetime):
        """The ids a claim takes: in the order of index ``ix_crawl_request_claim_order``, which
        the planner walks and leaves after ``limit`` rows however long the queue."""
        return (
            select(CrawlRequest.id)
            .where(
                CrawlRequest.source == self.source,
                CrawlRequest.state == "pending",
                CrawlRequest.next_attempt_at <= now,
            )
            .order_by(CrawlRequest.priority.desc(), CrawlRequest.id)
            .limit(limit)
        )

    def claim(self, limit: int, *, now: datetime | None = None) -> list[CrawlRequest]:
        """Take up to ``limit`` due requests, highest priority first, and mark them in flight,
        leased to this crawl."""
        now = now or datetime.now(UTC)
        due = self._due(limit, now).with_for_update(skip_locked=True).scalar_subquery()
        with self.catalogue.session() as s:
            claim_need_not_be_durable(s)
            claimed = (
                s.execute(
                    update(CrawlRequest)
                    .where(CrawlRequest.id.in_(due))
                    .values(
                        state="in_flight",
                        attempts=CrawlRequest.attempts + 1,
                        updated_at=now,
                        holder=self.holder,
                        next_attempt_at=now + timedelta(seconds=self.lease_s),
                    )
                    .returning(CrawlRequest)
                    .execution_options(synchronize_session=False)
                )
                .scalars()
                .all()
            )
            s.expunge_all()
        return sorted(claimed, key=lambda r: (-r.priority, r.id))

    def renew(self) -> int:
        """Extend the leases of the requests this crawl holds; returns how many."""
        now = datetime.now(UTC)
        with self.catalogue.session() as s:
            return s.execute(
                update(CrawlRequest)
                .where(CrawlRequest.holder == self.holder, CrawlRequest.state == "in_flight")
                .values(next_attempt_at=now + timedelta(seconds=self.lease_s))
            ).rowcount

    def _set(
        self, request_id: int, now: datetime | None = None, conn: Connection | None = None, **values
    ) -> None:
        with self._connection(conn) as c:
            c.execute(
                update(CrawlRequest)
                .where(CrawlRequest.id == request_id)
                .values(updated_at=now or datetime.now(UTC), **values)
            )

    def done_many(self, settled: list[dict], *, conn: Connection, now: datetime | None = None) -> None:
        """Mark a batch's requests done in one statement: each dict holds ``id``, ``status``,
        ``etag`` and ``last_modified`` (the validators for the next, conditional, fetch)."""
        if not settled:
            return
        table = CrawlRequest.__table__
        conn.execute(
            update(table)
            .where(table.c.id == bindparam("rid"))
            .values(
                state="done",
                last_status=bindparam("status"),
                last_error=None,
                etag=bindparam("etag_"),
                last_modified=bindparam("modified"),
                updated_at=now or datetime.now(UTC),
            ),
            [
                {"rid": d["id"], "status": d["status"], "etag_": d["etag"], "modified": d["last_modified"]}
                for d in settled
            ],
        )

    def retry_later(
        self,
        request_id: int,
        error: str,
        *,
        delay_s: float,
        max_attempts: int,
        status: int | None = None,
        now: datetime | None = None,
        conn: Connection | None = None,
    ) -> str:
        """Schedule another attempt after ``delay_s``, or fail the request when attempts run out.

        Returns the new state (``pending`` or ``failed``).
        """
        now = now or datetime.now(UTC)
        with self._connection(conn) as c:
            attempts = c.execute(
                select(CrawlRequest.attempts).where(CrawlRequest.id == request_id)
            ).scalar_one()
            state = "pending" if attempts < max_attempts else "failed"
            c.execute(
                update(CrawlRequest)
                .where(CrawlRequest.id == request_id)
                .values(
                    state=state,
                    last_error=error,
                    last_status=status,
                    next_attempt_at=now + timedelta(seconds=delay_s),
                    updated_at=now,
                )
            )
        return state

    def seconds_until_due(self, *, now: datetime | None = None) -> float | None:
        """How long until the next pending request is due (0 when one is) or another crawl's
        lease ends, or ``None`` when nothing is pending or held by another crawl: a crawl whose
        only work is waiting retries, or what other crawls hold, sleeps this long."""
        now = now or datetime.now(UTC)
        with self.catalogue.session() as s:
            due = s.execute(
                select(func.min(CrawlRequest.next_attempt_at)).where(
                    CrawlRequest.source == self.source,
                    (CrawlRequest.state == "pending")
                    | ((CrawlRequest.state == "in_flight") & (CrawlRequest.holder != self.holder)),
                )
            ).scalar_one()
        if due is None:
            return None
        due = due if due.tzinfo else due.replace(tzinfo=UTC)  # SQLite hands back naive UTC
        return max(0.0, (due - now).total_seconds())

    def fail(
        self, request_id: int, error: str, *, status: int | None = None, conn: Connection | None = None
    ) -> None:
        self._set(request_id, conn=conn, state="failed", last_error=error, last_status=status)

    def block(self, reason: str) -> int:
        """The site refused us: park every pending or in-flight request of this source."""
        with self.catalogue.session() as s:
            return s.execute(
                update(CrawlRequest)
                .where(CrawlRequest.source == self.source, CrawlRequest.state.in_(("pending", "in_flight")))
                .values(state="blocked", last_error=reason, updated_at=datetime.now(UTC))
            ).rowcount

    def release(self, request_ids: list[int], *, conn: Connection | None = None) -> None:
        """Claimed requests that were never fetched go back to pending, their attempt uncounted."""
        if not request_ids:
            return
        now = datetime.now(UTC)
        with self._connection(conn) as c:
            c.execute(
                update(CrawlRequest)
                .where(
                    CrawlRequest.id.in_(request_ids),
                    CrawlRequest.state == "in_flight",
                    # a claim this crawl lost (its lease expired, another crawl took it) is not ours
                    CrawlRequest.holder == self.holder,
                )
                .values(
                    state="pending", attempts=CrawlRequest.attempts - 1, updated_at=now, next_attempt_at=now
                )
            )

    def recover(self) -> int:
        """Requests left in flight by a killed crawl go back to pending (their attempt counted):
        those of a crawl process known dead, and those whose lease has expired. A live crawl's
        requests, on this machine or another, stay with it."""
        now = datetime.now(UTC)
        with self.catalogue.session() as s:
            holders = s.execute(
                select(CrawlRequest.holder)
                .where(CrawlRequest.source == self.source, CrawlRequest.state == "in_flight")
                .distinct()
            ).scalars()
            gone = [h for h in holders if h != self.holder and h is not None and lease_holder_is_gone(h)]
            return s.execute(
                update(CrawlRequest)
                .where(
                    CrawlRequest.source == self.source,
                    CrawlRequest.state == "in_flight",
                    CrawlRequest.holder.is_(None)
                    | CrawlRequest.holder.in_(gone)
                    | (CrawlRequest.next_attempt_at <= now),
                )
                .values(state="pending", next_attempt_at=now, updated_at=now)
            ).rowcount

    def retry_failed(self, *, include_blocked: bool = False) -> int:
        """``harvest retry-failed``: failed (and, if asked, blocked) requests are pending again."""
        return self._requeue(("failed", "blocked") if include_blocked else ("failed",), reset_attempts=True)

    def _requeue(self, states: tuple[str, ...], *, reset_attempts: bool = False) -> int:
        now = datetime.now(UTC)
        values = {"state": "pending", "next_attempt_at": now, "updated_at": now}
        if reset_attempts:
            values["attempts"] = 0
        with self.catalogue.session() as s:
            return s.execute(
                update(CrawlRequest)
                .where(CrawlRequest.source == self.source, CrawlRequest.state.in_(states))
                .values(**values)
            ).rowcount

    def failures(self, limit: int | None = None) -> list[dict]:
        """The failed requests, latest first: what ``harvest status --failed`` lists and
        ``harvest retry-failed`` would queue again."""
        with self.catalogue.session() as s:
            rows = s.execute(
                select(
                    CrawlRequest.method,
                    CrawlRequest.url,
                    CrawlRequest.attempts,
                    CrawlRequest.last_status,
                    CrawlRequest.last_error,
                    CrawlRequest.updated_at,
                )
                .where(CrawlRequest.source == self.source, CrawlRequest.state == "failed")
                .order_by(CrawlRequest.updated_at.desc(), CrawlRequest.id.desc())
                .limit(limit)
            ).all()
        return [
            {
                "source": self.source,
                "method": method,
                "url": url,
                "attempts": attempts,
                "status": status,
                "error": error,
                "failed_at": when,
            }
            for method, url, attempts, status, error, when in rows
        ]

    def counts(self) -> dict[str, int]:
        with self.catalogue.session() as s:
            found = dict(
                s.execute(
                    select(CrawlRequest.state, func.count())
                    .where(CrawlRequest.source == self.source)
                    .group_by(CrawlRequest.state)
                ).all()
            )
        return {state: found.get(state, 0) for state in STATES}
