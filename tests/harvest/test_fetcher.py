"""The polite fetcher against a real HTTP server on loopback that misbehaves on purpose."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from harvest.fetcher import (
    BudgetExhausted,
    Fetcher,
    FetchFailed,
    FetchPolicy,
    RobotsDisallowed,
    SourceBlocked,
    retry_after_seconds,
)
from tests.harvest.fixture_server import Answer, FixtureServer


@pytest.fixture
def server():
    with FixtureServer() as s:
        s.route(
            "/robots.txt",
            Answer(200, b"User-agent: *\nDisallow: /private/\n", {"Content-Type": "text/plain"}),
        )
        yield s


def fast(**kw) -> FetchPolicy:
    return FetchPolicy(**({"delay": 0.0, "backoff_base": 0.05, "timeout": 2.0} | kw))


def run(coro):
    return asyncio.run(coro)


async def fetch_all(policy, urls, **kw):
    async with Fetcher(policy) as f:
        return await asyncio.gather(*(f.fetch(u, **kw) for u in urls), return_exceptions=True)


def test_concurrency_per_host_and_delay_between_starts_are_kept(server):
    urls = [server.route(f"/item/{i}", Answer(200, b"{}", delay=0.15)) for i in range(6)]
    log: list = []

    async def go():
        async with Fetcher(FetchPolicy(concurrency=2, delay=0.2, jitter=0.25), log=log) as f:
            return await asyncio.gather(*(f.fetch(u) for u in urls))

    results = run(go())
    assert all(r.status == 200 for r in results)
    assert server.max_active <= 2  # seen by the server
    # the delay is between the moments we send requests: read it from the fetcher's own log, since
    # the server's arrival times also carry thread-scheduling noise
    starts = sorted(start for start, _, _, url, _ in log if "/item/" in url)
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert min(gaps) >= 0.2 * 0.75 - 0.01


def test_429_retry_after_seconds_is_waited(server):
    url = server.route("/busy", Answer(429, b"slow down", {"Retry-After": "1"}), Answer(200, b'{"ok": 1}'))
    (response,) = run(fetch_all(fast(), [url]))
    first, second = server.hits_for("/busy")
    assert response.status == 200 and second.start - first.start >= 1.0


def test_retry_after_as_an_http_date_is_understood():
    later = datetime.now(UTC) + timedelta(seconds=30)
    assert 25 <= retry_after_seconds(format_datetime(later, usegmt=True)) <= 31
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("soon") is None


def test_a_503_burst_is_retried_with_backoff_then_succeeds(server):
    url = server.route("/flaky", Answer(503), Answer(503), Answer(200, b"{}"))
    (response,) = run(fetch_all(fast(), [url]))
    assert response.status == 200 and len(server.hits_for("/flaky")) == 3


def test_retries_are_capped_and_then_the_request_fails(server):
    url = server.route("/down", Answer(500))
    (result,) = run(fetch_all(fast(max_attempts=3), [url]))
    assert isinstance(result, FetchFailed) and "HTTP 500 after 3 attempts" in result.message
    assert len(server.hits_for("/down")) == 3


def test_a_slow_response_times_out_and_is_retried(server):
    url = server.route("/slow", Answer(200, b"{}", delay=1.0), Answer(200, b"{}"))
    (response,) = run(fetch_all(fast(timeout=0.3), [url]))
    assert response.status == 200 and len(server.hits_for("/slow")) == 2


def test_robots_disallowed_paths_are_never_fetched(server):
    url = server.route("/private/x", Answer(200, b"{}"))
    (result,) = run(fetch_all(fast(), [url]))
    assert isinstance(result, RobotsDisallowed)
    assert server.hits_for("/private/x") == []
    assert len(server.hits_for("/robots.txt")) == 1


def test_a_bot_challenge_stops_the_source(server):
    page = b"<html><head><title>Just a moment...</title></head><body>cf-chl</body></html>"
    url = server.route(
        "/results", Answer(403, page, {"Content-Type": "text/html", "cf-mitigated": "challenge"})
    )
    (result,) = run(fetch_all(fast(), [url]))
    assert isinstance(result, SourceBlocked)
    assert "never tries to get around" in result.hint
    assert len(server.hits_for("/results")) == 1


def test_conditional_get_sends_validators_and_reads_304(server):
    url = server.route("/api/shader", Answer(304, b"", {"ETag": '"v1"'}))
    (response,) = run(fetch_all(fast(), [url], etag='"v1"', last_modified="Wed, 01 Jan 2026 00:00:00 GMT"))
    assert response.not_modified
    hit = server.hits_for("/api/shader")[0]
    assert hit.headers["If-None-Match"] == '"v1"'
    assert hit.headers["If-Modified-Since"] == "Wed, 01 Jan 2026 00:00:00 GMT"


def test_redirects_are_followed_on_the_same_host_only(server):
    server.route("/old", Answer(301, b"", {"Location": "/new"}))
    server.route("/new", Answer(200, b'{"moved": true}'))
    server.route("/away", Answer(302, b"", {"Location": "http://example.invalid/x"}))
    moved, away = run(fetch_all(fast(), [server.base + "/old", server.base + "/away"]))
    assert moved.status == 200 and moved.content == b'{"moved": true}'
    assert isinstance(away, FetchFailed) and "another host" in away.message


def test_responses_over_the_size_cap_are_refused(server):
    url = server.route("/huge", Answer(200, b"x" * 5000))
    (result,) = run(fetch_all(fast(max_bytes=1000), [url]))
    assert isinstance(result, FetchFailed) and "cap" in result.message


def test_the_request_budget_is_enforced(server):
    urls = [server.route(f"/b/{i}", Answer(200, b"{}")) for i in range(5)]
    results = run(fetch_all(fast(budget=3, concurrency=1), urls))
    # robots.txt is the first of the three requests, so two items are fetched and three refused
    assert sum(isinstance(r, BudgetExhausted) for r in results) == 3
    assert len([h for h in server.hits if h.path.startswith("/b/")]) == 2


def test_the_user_agent_names_the_project_and_the_contact(server):
    url = server.route("/ua", Answer(200, b"{}"))
    run(fetch_all(fast(contact="https://example.org/contact"), [url]))
    agent = server.hits_for("/ua")[0].headers["User-Agent"]
    assert agent.startswith("imageprograms/") and "https://example.org/contact" in agent
