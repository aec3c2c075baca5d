"""Bad input through a real crawl: the shadertoy-api source against a loopback server that
misbehaves on purpose (429 with Retry-After in seconds and as a date, a 503 burst, a timeout, a
slow answer, a connection reset, a truncated body, malformed JSON, HTML where JSON belongs, a
shader without passes, a gigantic answer, a redirect to another host, a robots.txt disallow).

Each crawl must end with every reachable program stored exactly once with its code, nothing
stored before lost, each failure recorded where `harvest status` and `retry-failed` find it, and
the request log showing the politeness promised: at most the configured requests in flight, the
delay between request starts kept, the Retry-After waited, nothing disallowed or off-host fetched.
(The fetcher's own tests cover each rule alone; here they meet the frontier and the store.)
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from corpus.queries import show_program
from harvest.crawling import crawl
from harvest.fetcher import FetchPolicy
from harvest.frontier import Frontier
from harvest.raw import iter_raw_documents
from tests.conftest import catalogue_rows
from tests.harvest.fixture_server import Answer, FixtureServer, Hit
from tests.harvest.helpers import HTML, KEY, shader

DELAY, JITTER, CONCURRENCY = 0.02, 0.3, 2  # errors widen the delay (adaptive throttle) up to 32x
CAP = 64 * 1024


def api_path(sid: str) -> str:
    return f"/api/v1/shaders/{sid}?key={KEY}"


def code_of(sid: str, n: int) -> str:
    return json.loads(shader(sid, n))["Shader"]["renderpass"][0]["code"]


def retry_after_date(_: Hit) -> Answer:
    """429 with Retry-After as an HTTP date two seconds from now (computed when asked)."""
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)
    return Answer(429, b"slow down", {"Retry-After": when, "Content-Type": "text/plain"})


# id -> answers in turn (the last repeats); n is the shader's number, for its code
RECOVERS = {
    "busy01": [Answer(429, b"slow down", {"Retry-After": "1"})],
    "busy02": [retry_after_date],
    "burst1": [Answer(503), Answer(503), Answer(503)],
    "slow01": [],  # answered after half a second, well inside the timeout
    "hang01": [Answer(200, b"{}", delay=2.5)],  # past the 1 s timeout once
    "reset1": [Answer(cut="reset")],
    "trunc1": [Answer(cut="truncate")],
}
PARSE_ERRORS = {
    "badjsn": Answer(200, b'{"Shader": {"info": {"id": "badjsn"'),
    "htmlpg": Answer(200, b"<!DOCTYPE html><html><body>Maintenance</body></html>", HTML),
    "nopass": Answer(200, json.dumps({"Shader": {"info": {"id": "nopass"}, "renderpass": []}}).encode()),
}
FAILS = {
    "huge01": Answer(200, b'{"Shader": "' + b"x" * (4 * CAP) + b'"}'),
    "away01": Answer(302, b"", {"Location": "http://elsewhere.invalid/api/v1/shaders/away01"}),
    "secret": Answer(200, b"{}"),  # disallowed by robots.txt: never asked for
}
GOOD = [f"good{i:02d}" for i in range(6)]


def policy() -> FetchPolicy:
    return FetchPolicy(
        concurrency=CONCURRENCY, delay=DELAY, jitter=JITTER, timeout=1.0, backoff_base=0.05, max_bytes=CAP
    )


def numbered(ids):
    return {sid: n for n, sid in enumerate(ids)}


@pytest.fixture
def api():
    with FixtureServer() as s:
        s.route(
            "/robots.txt",
            Answer(200, b"User-agent: *\nDisallow: /api/v1/shaders/secret\n", {"Content-Type": "text/plain"}),
        )
        s.route(f"/api/v1/shaders?key={KEY}", Answer(200, json.dumps({"Results": GOOD}).encode()))
        for sid, n in numbered(GOOD).items():
            s.route(api_path(sid), Answer(200, shader(sid, n)))
        yield s


def listing(server: FixtureServer, ids: list[str]) -> None:
    server.route(f"/api/v1/shaders?key={KEY}", Answer(200, json.dumps({"Results": ids}).encode()))


def run(catalogue, server):
    log: list = []
    report = crawl(catalogue, "shadertoy-api", base_url=server.base, key=KEY, policy=policy(), log=log)
    return report, log


def assert_polite(log: list) -> None:
    """At most CONCURRENCY requests in flight, and request starts DELAY (less jitter) apart, as the
    fetcher's own log records them (the server's arrival times carry thread-scheduling noise)."""
    starts = sorted(start for start, *_ in log)
    assert max(sum(1 for s, e, *_ in log if s <= t < e) for t in starts) <= CONCURRENCY
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert min(gaps) >= DELAY * (1 - JITTER) - 0.005


def kept_rows(catalogue) -> dict[str, list[tuple]]:
    """The rows that hold programs and their code, to check that a later crawl loses none."""
    return {k: v for k, v in catalogue_rows(catalogue).items() if k in ("program", "blob", "render_pass")}


def stored_once(db) -> dict[str, int]:
    con = sqlite3.connect(db)
    counts = dict(con.execute("SELECT external_id, count(*) FROM program GROUP BY external_id"))
    con.close()
    return counts


def test_every_fault_ends_with_each_reachable_program_stored_once_and_nothing_lost(tmp_path, api):
    from corpus.db import open_catalogue

    db = tmp_path / "c.db"
    catalogue = open_catalogue(str(db), create=True)
    report, _ = run(catalogue, api)
    assert report.added == len(GOOD)
    before = kept_rows(catalogue)

    # the list grows; each new shader misbehaves in its own way, then (where it can) recovers
    faulty = [*RECOVERS, *PARSE_ERRORS, *FAILS]
    ids = [*GOOD, *faulty]
    number = numbered(ids)
    listing(api, ids)
    for sid, answers in RECOVERS.items():
        good = Answer(200, shader(sid, number[sid]), delay=0.5 if sid == "slow01" else 0.0)
        if sid == "trunc1":
            answers = [Answer(200, shader(sid, number[sid]), cut="truncate")]
        api.route(api_path(sid), *answers, good)
    for sid, answer in {**PARSE_ERRORS, **FAILS}.items():
        api.route(api_path(sid), answer)

    report, log = run(catalogue, api)

    # every reachable program exactly once, with its code; nothing stored before changed
    counts = stored_once(db)
    assert counts == {sid: 1 for sid in [*GOOD, *RECOVERS]}
    for sid in [*GOOD, *RECOVERS]:
        (image,) = show_program(catalogue, f"shadertoy:{sid}")["passes"]
        assert image["code"] == code_of(sid, number[sid]), sid
    after = kept_rows(catalogue)
    for table, rows in before.items():
        assert set(rows) <= set(after[table]), table
    assert (report.added, report.parse_errors) == (len(RECOVERS), len(PARSE_ERRORS))
    assert report.failed == len(FAILS)

    # each failure is recorded with a reason a person can act on
    con = sqlite3.connect(db)
    errors = dict(con.execute("SELECT url, last_error FROM crawl_request WHERE state = 'failed'"))
    con.close()
    error_of = {url.rsplit("/", 1)[-1]: e for url, e in errors.items()}
    assert set(error_of) == {*PARSE_ERRORS, *FAILS}
    assert "did not return JSON" in error_of["badjsn"] and "did not return JSON" in error_of["htmlpg"]
    assert "no renderpass" in error_of["nopass"]
    assert "over the cap" in error_of["huge01"]
    assert "another host" in error_of["away01"] and "robots.txt disallows" in error_of["secret"]
    assert all("raw document" in error_of[sid] for sid in PARSE_ERRORS)  # kept for reparse
    kept = {url.rsplit("/", 1)[-1] for _, url, *_ in iter_raw_documents(catalogue, "shadertoy")}
    assert set(PARSE_ERRORS) <= kept

    # the request log: politeness kept through retries, waits and failures
    assert_polite(log)
    busy, again = api.hits_for(api_path("busy01"))
    assert again.start - busy.start >= 1.0  # Retry-After: 1
    busy, again = api.hits_for(api_path("busy02"))
    assert again.start - busy.start >= 1.0  # an HTTP date 2 s ahead, whole seconds: at least 1 s
    assert len(api.hits_for(api_path("burst1"))) == 4
    for sid in ("hang01", "reset1", "trunc1"):
        assert len(api.hits_for(api_path(sid))) == 2, sid
    assert api.hits_for(api_path("secret")) == []
    assert not [url for *_, url, _ in log if "elsewhere" in url]  # the redirect was not followed
    assert len(api.hits_for(api_path("huge01"))) == 1  # too large is final: no retry
    for sid in PARSE_ERRORS:  # a response that does not parse is asked for again, up to the limit
        assert len(api.hits_for(api_path(sid))) == policy().max_attempts, sid
        assert f"after {policy().max_attempts} attempts" in error_of[sid]


def test_responses_cut_short_or_served_as_an_html_error_page_are_fetched_again(catalogue, api):
    ids = [*GOOD, "short1", "short2", "errpg1"]
    number = numbered(ids)
    listing(api, ids)
    for sid in ("short1", "short2"):  # whole answers (Content-Length matches) of cut-short JSON
        whole = shader(sid, number[sid])
        api.route(api_path(sid), Answer(200, whole[:60]), Answer(200, whole[:-2]), Answer(200, whole))
    maintenance = Answer(200, b"<!DOCTYPE html><html><body>Down for maintenance</body></html>", HTML)
    api.route(api_path("errpg1"), maintenance, Answer(200, shader("errpg1", number["errpg1"])))

    report, log = run(catalogue, api)

    assert (report.added, report.parse_errors, report.failed) == (len(ids), 0, 0)
    assert stored_once(catalogue.engine.url.database) == {sid: 1 for sid in ids}
    for sid in ("short1", "short2", "errpg1"):
        (image,) = show_program(catalogue, f"shadertoy:{sid}")["passes"]
        assert image["code"] == code_of(sid, number[sid]), sid
    assert [len(api.hits_for(api_path(s))) for s in ("short1", "short2", "errpg1")] == [3, 3, 2]
    assert Frontier(catalogue, "shadertoy-api").counts()["done"] == len(ids) + 1  # and the list
    assert_polite(log)


def test_a_challenge_mid_crawl_stops_the_source_at_once_and_keeps_what_was_stored(catalogue, api):
    ids = [*GOOD, "chall1", *[f"late{i:02d}" for i in range(10)]]
    listing(api, ids)
    page = b"<html><head><title>Just a moment...</title></head><body>cf-chl</body></html>"
    api.route(api_path("chall1"), Answer(403, page, HTML | {"cf-mitigated": "challenge"}))
    for sid, n in numbered(ids).items():
        if sid.startswith("late"):
            api.route(api_path(sid), Answer(200, shader(sid, n)))
    report, log = run(catalogue, api)
    assert "challenge" in report.blocked and "stopping this source" in report.blocked
    (challenge,) = api.hits_for(api_path("chall1"))  # asked once: never retried, never worked around
    (answered,) = [end for _, end, _, url, _ in log if "/chall1" in url]
    assert not [url for start, _, _, url, _ in log if start > answered]  # nothing sent after it
    assert_polite(log)
    counts = stored_once(catalogue.engine.url.database)
    assert set(GOOD) <= set(counts) <= set(ids) and set(counts.values()) == {1}
    states = Frontier(catalogue, "shadertoy-api").counts()
    assert states["pending"] == states["in_flight"] == 0 and states["blocked"] >= 1
    # crawling again asks for the list (conditionally) and nothing parked: retry-failed --blocked
    # is how a person says the site may be asked again
    report, log = run(catalogue, api)
    assert report.requests_done <= 1 and len(api.hits_for(api_path("chall1"))) == 1
