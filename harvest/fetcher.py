"""The one polite fetcher every crawl source goes through.

All politeness lives here, as in Scrapy's downloader, so sources stay declarative:

- a slot per host: at most ``concurrency`` requests in flight and ``delay`` seconds (with
  jitter) between request starts; errors and slow answers widen the delay (adaptive throttle)
  and successes narrow it back, never below what was configured. Given shared ``slots`` (a
  crawl's catalogue: :class:`harvest.host_slots.HostSlots`), the start times come from there, so
  the delay holds between the requests of every process sharing it, never below ``delay``;
- robots.txt, fetched once per host and obeyed (``protego``), with our User-Agent;
- retries with exponential backoff and jitter on connection errors, timeouts and
  408/429/500/502/503/504/522/524, honouring ``Retry-After`` in seconds or as an HTTP date
  (one wait per event, capped), then a :class:`FetchFailed`;
- conditional GETs (``If-None-Match`` / ``If-Modified-Since``), a response size cap, redirects
  followed only within the same host, and a per-source request budget;
- a bot challenge or block page raises :class:`SourceBlocked`, which stops the source: we never
  try to get around one.
"""

from __future__ import annotations

import asyncio
import random
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol
from urllib.parse import urljoin, urlsplit

import anyio
import httpx
from protego import Protego

from corpus.cliutils import package_version
from corpus.errors import ExitCode, ImageProgramsError
from harvest.transport import KeepAliveTransport

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 522, 524})
_CHALLENGE_MARKERS = (
    b"cf-chl",
    b"challenge-platform",
    b"just a moment...",
    b"attention required! | cloudflare",
    b"cf-browser-verification",
    b"g-recaptcha",
    b"h-captcha",
    b"captcha-delivery",
)
_LOGIN_MARKERS = (b'type="password"',)


class FetchFailed(ImageProgramsError):
    """A request failed for good (retries spent, disallowed, too large, off-host redirect)."""

    exit_code = ExitCode.FETCH_FAILED

    def __init__(self, message: str, hint: str | None = None, *, status: int | None = None) -> None:
        super().__init__(message, hint)
        self.status = status


class RobotsDisallowed(FetchFailed):
    pass


class BudgetExhausted(FetchFailed):
    pass


class SourceBlocked(ImageProgramsError):
    """The site answered with a bot challenge, a block page or a login wall."""

    exit_code = ExitCode.SOURCE_BLOCKED


@dataclass
class FetchPolicy:
    concurrency: int = 2
    delay: float = 1.0
    jitter: float = 0.3
    timeout: float = 30.0
    max_attempts: int = 5
    backoff_base: float = 1.0
    backoff_cap: float = 120.0
    retry_after_cap: float = 600.0
    max_bytes: int = 32 * 1024 * 1024
    max_redirects: int = 5
    budget: int | None = None
    obey_robots: bool = True
    contact: str | None = None
    user_agent: str = ""

    def __post_init__(self) -> None:
        if not self.user_agent:
            contact = f"; +{self.contact}" if self.contact else ""
            self.user_agent = f"imageprograms/{package_version()} (research corpus builder{contact})"

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based): exponential, capped,
        with jitter so that clients that failed together do not come back together."""
        return min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


@dataclass
class Response:
    url: str
    status: int
    headers: httpx.Headers
    content: bytes
    elapsed: float

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


@dataclass
class _Slot:
    semaphore: asyncio.Semaphore
    next_start: float = 0.0
    factor: float = 1.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class SharedSlots(Protocol):
    """Start times shared with other processes: :meth:`reserve` holds ``gap_s`` seconds after the
    returned start (epoch seconds) for one request to ``host``."""

    def reserve(self, host: str, gap_s: float) -> float: ...


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds to wait: a number of seconds, or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def looks_blocked(status: int, headers: httpx.Headers, body: bytes) -> str | None:
    """Why a response is a challenge, block page or login wall, or None."""
    if headers.get("cf-mitigated", "").lower() == "challenge":
        return "a Cloudflare challenge (cf-mitigated: challenge)"
    head = body[:65536].lower()
    if "html" in headers.get("content-type", "").lower() or head.lstrip().startswith(b"<"):
        for marker in _CHALLENGE_MARKERS:
            if marker in head:
                return f"a bot-challenge page ({marker.decode()!r})"
        if status in (401, 403) and any(m in head for m in _LOGIN_MARKERS):
            return "a login wall"
    if status == 403:
        return "403 Forbidden"
    return None


class Fetcher:
    """Fetch with every politeness rule; use as ``async with Fetcher(policy) as f``."""

    def __init__(
        self, policy: FetchPolicy | None = None, *, log: list | None = None, slots: SharedSlots | None = None
    ) -> None:
        self.policy = policy or FetchPolicy()
        self.slots = slots
        self.log = log  # (start, end, method, url, status) per attempt, for tests and --json
        self.requests_made = 0
        self.requests_by_host: dict[str, int] = {}  # for a live display of each host's rate
        self._slots: dict[str, _Slot] = {}
        self._hosts: dict[int, str] = {}  # id(slot): its host, for the shared slots
        self._robots: dict[str, Protego | None] = {}
        self._robots_lock = asyncio.Lock()
        self._blocked: dict[str, SourceBlocked] = {}  # hosts that said no: nothing more goes to them
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Fetcher:
        # The first request of a process would load the HTTP stack's async backend (anyio's, tens
        # of milliseconds on a busy machine) between its reserved start and the moment it goes
        # out, bunching it with the next one: load it now.
        await anyio.sleep(0)
        # Our lean transport speaks no proxies: when the environment names one, httpx's own does.
        proxied = any(k in urllib.request.getproxies() for k in ("http", "https", "all"))
        self._client = httpx.AsyncClient(
            timeout=self.policy.timeout,
            follow_redirects=False,
            headers={"User-Agent": self.policy.user_agent},
            transport=None if proxied else KeepAliveTransport(),
        )
        return self

    async def __aexit__(self, *exc) -> None:
        if self._client is not None:
            await self._client.aclose()

    def _slot(self, host: str) -> _Slot:
        if host not in self._slots:
            self._slots[host] = _Slot(asyncio.Semaphore(self.policy.concurrency))
            self._hosts[id(self._slots[host])] = host
        return self._slots[host]

    async def _wait_turn(self, slot: _Slot) -> None:
        if self.slots is not None and self.policy.delay > 0:
            async with slot.lock:  # one reservation at a time: each gets its own start
                gap = self.policy.delay * slot.factor
                gap = max(
                    gap * (1 + random.uniform(-self.policy.jitter, self.policy.jitter)), self.policy.delay
                )
                # a database write that may wait for a lock: off the event loop, so other fetches,
                # the lease renewer and the display go on meanwhile
                start = await asyncio.to_thread(self.slots.reserve, self._hosts[id(slot)], gap)
                await asyncio.sleep(max(0.0, start - time.time()))
            return
        async with slot.lock:
            now = time.monotonic()
            if slot.next_start > now:
                await asyncio.sleep(slot.next_start - now)
            gap = self.policy.delay * slot.factor
            if gap:
                gap *= 1 + random.uniform(-self.policy.jitter, self.policy.jitter)
            slot.next_start = time.monotonic() + max(gap, self.policy.delay * (1 - self.policy.jitter))

    async def allowed(self, url: str) -> bool:
        if not self.policy.obey_robots:
            return True
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._robots:  # the lock only while a host's robots.txt is not yet known
            async with self._robots_lock:
                if origin not in self._robots:
                    self._robots[origin] = await self._load_robots(origin)
        robots = self._robots[origin]
        return True if robots is None else robots.can_fetch(url, self.policy.user_agent)

    async def _load_robots(self, origin: str) -> Protego | None:
        await self._wait_turn(self._slot(urlsplit(origin).netloc))  # robots.txt keeps the delay too
        try:
            response = await self._request_once("GET", origin + "/robots.txt", None, {})
        except (httpx.HTTPError, FetchFailed):
            return None  # no reachable robots.txt: nothing is disallowed
        if response.status >= 400:
            return None
        return Protego.parse(response.text())

    async def fetch(
        self,
        url: str,
        *,
        method: str = "GET",
        data: dict | str | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> Response:
        """Fetch ``url`` politely; raises :class:`FetchFailed` or :class:`SourceBlocked`."""
        if not await self.allowed(url):
            raise RobotsDisallowed(f"robots.txt disallows {url}", hint="the site asked crawlers to keep out")
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        host = urlsplit(url).netloc
        slot = self._slot(host)
        error = "no attempt made"
        for attempt in range(1, self.policy.max_attempts + 1):
            wait = 0.0
            async with slot.semaphore:
                await self._wait_turn(slot)
                if host in self._blocked:  # requests queued behind a challenge are never sent
                    raise self._blocked[host]
                if self.policy.budget is not None and self.requests_made >= self.policy.budget:
                    raise BudgetExhausted(
                        f"request budget of {self.policy.budget} spent", hint="raise --budget"
                    )
                try:
                    response = await self._follow(method, url, data, headers, host)
                except httpx.TimeoutException:
                    error, status = f"timed out after {self.policy.timeout} s", None
                except httpx.TransportError as exc:
                    error, status = f"connection error: {exc.__class__.__name__}", None
                else:
                    status = response.status
                    reason = looks_blocked(status, response.headers, response.content)
                    if reason is not None and status not in RETRY_STATUSES - {503}:
                        self._blocked[host] = SourceBlocked(
                            f"{host} answered {url} with {reason}; stopping this source",
                            hint="use a dump (harvest import), the site's API with a key, or try much later;"
                            " imageprograms never tries to get around a challenge",
                        )
                        raise self._blocked[host]
                    if status not in RETRY_STATUSES:
                        slot.factor = max(1.0, slot.factor * 0.8)
                        return response
                    error = f"HTTP {status}"
                    wait = retry_after_seconds(response.headers.get("Retry-After")) or 0.0
                slot.factor = min(slot.factor * 2, 32.0)
            if attempt == self.policy.max_attempts:
                break
            backoff = self.policy.backoff(attempt)
            await asyncio.sleep(min(max(wait, backoff), self.policy.retry_after_cap))
        raise FetchFailed(f"{url}: {error} after {self.policy.max_attempts} attempts", status=status)

    async def _follow(self, method: str, url: str, data, headers: dict, host: str) -> Response:
        for _ in range(self.policy.max_redirects + 1):
            response = await self._request_once(method, url, data, headers)
            if response.status not in (301, 302, 303, 307, 308):
                return response
            target = urljoin(url, response.headers.get("Location", ""))
            if urlsplit(target).netloc != host:
                raise FetchFailed(f"{url} redirects to another host ({target}); not followed")
            url = target
            if response.status == 303:
                method, data = "GET", None
        raise FetchFailed(f"{url}: more than {self.policy.max_redirects} redirects")

    async def _request_once(self, method: str, url: str, data, headers: dict) -> Response:
        assert self._client is not None, "use the Fetcher as an async context manager"
        self.requests_made += 1
        host = urlsplit(url).netloc
        self.requests_by_host[host] = self.requests_by_host.get(host, 0) + 1
        started = time.monotonic()
        kwargs = {"data": data} if isinstance(data, dict) else {"content": data} if data else {}
        status = None
        try:
            async with self._client.stream(method, url, headers=headers, **kwargs) as r:
                status = r.status_code
                length = int(r.headers.get("Content-Length") or 0)
                if length > self.policy.max_bytes:
                    raise FetchFailed(
                        f"{url}: response of {length} bytes is over the cap of {self.policy.max_bytes}"
                    )
                chunks, size = [], 0
                async for chunk in r.aiter_bytes():
                    size += len(chunk)
                    if size > self.policy.max_bytes:
                        raise FetchFailed(f"{url}: response is over the cap of {self.policy.max_bytes} bytes")
                    chunks.append(chunk)
                return Response(
                    str(r.url), r.status_code, r.headers, b"".join(chunks), time.monotonic() - started
                )
        finally:
            if self.log is not None:
                self.log.append((started, time.monotonic(), method, url, status))
