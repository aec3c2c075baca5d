"""Incremental crawls (--since) and what a person sees while a crawl runs: the live display's
numbers, the one summary line when piped, --json."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from rich.console import Console

from corpus.cliutils import run_app
from corpus.db import open_catalogue
from harvest.cli import app
from harvest.crawling import CrawlProgress, CrawlReport, crawl
from harvest.display import HostRates, render
from harvest.fetcher import FetchPolicy
from harvest.sources import shadertoy_api
from tests.harvest.fixture_server import Answer, FixtureServer
from tests.harvest.helpers import KEY, shader

DAY = 86400
SINCE = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
PAGE = 4


def query_path(start: int, sort: str = "newest") -> str:
    return f"/api/v1/shaders/query/plasma?sort={sort}&from={start}&num={PAGE}&key={KEY}"


@pytest.fixture
def newest_first(monkeypatch):
    """A query sorted by newest: four pages of four shaders, two days apart, the first page and a
    half after SINCE, the rest before it; then an empty page."""
    monkeypatch.setattr(shadertoy_api, "PAGE", PAGE)
    with FixtureServer() as s:
        s.route("/robots.txt", Answer(200, b"", {"Content-Type": "text/plain"}))
        dates = {}
        for page in range(4):
            ids = [f"p{page}s{i}" for i in range(PAGE)]
            s.route(
                query_path(page * PAGE), Answer(200, json.dumps({"Shaders": 16, "Results": ids}).encode())
            )
            for i, sid in enumerate(ids):
                dates[sid] = int(SINCE + (6 - 2 * (page * PAGE + i)) * DAY)
                s.route(f"/api/v1/shaders/{sid}?key={KEY}", Answer(200, shader(sid, i, dates[sid])))
        s.route(query_path(4 * PAGE), Answer(200, json.dumps({"Shaders": 16, "Results": []}).encode()))
        s.dates = dates
        yield s


def crawl_query(catalogue, server: FixtureServer, progress=None, **options) -> CrawlReport:
    """The shadertoy-api source's query ``plasma`` against ``server``, no delay."""
    return crawl(
        catalogue,
        "shadertoy-api",
        base_url=server.base,
        key=KEY,
        policy=FetchPolicy(delay=0.0, backoff_base=0.05, timeout=2.0),
        options={"query": "plasma", **options},
        progress=progress,
    )


def test_since_stops_a_newest_first_query_once_its_shaders_are_older(catalogue, newest_first):
    s = newest_first
    report = crawl_query(catalogue, s, sort="newest", since=SINCE)
    fetched = {h.path.split("?")[0].rsplit("/", 1)[-1] for h in s.hits if "/shaders/p" in h.path}
    # every shader at or after SINCE is fetched; the listing goes at most one page past the date
    # (page 1's shaders are older, which is known only once they are fetched) and no further
    assert {sid for sid, date in s.dates.items() if date >= SINCE} <= fetched
    assert s.hits_for(query_path(3 * PAGE)) == []
    assert not any(sid.startswith(("p2", "p3")) for sid in fetched)
    assert report.added == len(fetched) and report.failed == report.parse_errors == 0


def test_without_since_the_same_query_pages_to_its_end(catalogue, newest_first):
    assert crawl_query(catalogue, newest_first, sort="newest").added == 16


def test_since_on_a_query_not_sorted_by_newest_is_refused(tmp_path, newest_first, capsys):
    args = ["crawl", "shadertoy-api", "--base-url", newest_first.base, "--key", KEY, "--delay", "0"]
    args += [
        "--query",
        "plasma",
        "--sort",
        "popular",
        "--since",
        "2024-01-01",
        "--db",
        str(tmp_path / "c.db"),
    ]
    assert run_app(app, "harvest", args) == 2
    err = capsys.readouterr().err
    assert "--since needs a listing sorted by newest" in err and "--sort newest" in err
    assert newest_first.hits_for(query_path(0, "popular")) == []


def test_since_through_the_cli_takes_a_date_and_refuses_nonsense(tmp_path, newest_first, capsys):
    db = str(tmp_path / "c.db")
    base = ["crawl", "shadertoy-api", "--base-url", newest_first.base, "--key", KEY, "--delay", "0"]
    base += ["--query", "plasma", "--db", db]
    assert run_app(app, "harvest", [*base, "--since", "yesterday-ish"]) == 2
    assert "is not a date" in capsys.readouterr().err
    assert run_app(app, "harvest", [*base, "--since", "2024-01-01T00:00:00Z", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert 8 <= report["added"] < 16
    assert newest_first.hits_for(query_path(3 * PAGE)) == []


def test_a_piped_crawl_prints_one_summary_line_and_no_display(tmp_path, newest_first, capsys):
    args = ["crawl", "shadertoy-api", "--base-url", newest_first.base, "--key", KEY, "--delay", "0"]
    args += ["--query", "plasma", "--db", str(tmp_path / "c.db")]
    assert run_app(app, "harvest", args) == 0
    out, err = capsys.readouterr()
    assert out.count("\n") == 1 and "16 programs added" in out
    assert err == ""


def test_progress_arrives_during_the_crawl_with_rising_counts(tmp_path, newest_first):
    seen: list[tuple[int, int, dict]] = []

    def progress(p: CrawlProgress) -> None:
        seen.append((p.requests, p.report.added, dict(p.requests_by_host)))

    crawl_query(open_catalogue(str(tmp_path / "c.db"), create=True), newest_first, progress)
    assert len(seen) >= 2
    assert [r for r, *_ in seen] == sorted(r for r, *_ in seen)
    requests, added, hosts = seen[-1]
    host = newest_first.base.removeprefix("http://")
    assert added == 16 and hosts == {host: requests} and requests == len(newest_first.hits)


def test_host_rates_are_read_over_a_sliding_window():
    rates = HostRates(window_s=10.0)
    rates.add({"a.example": 0}, now=100.0)
    rates.add({"a.example": 10, "b.example": 4}, now=105.0)
    assert rates.rates() == {"a.example": 2.0, "b.example": 0.8}
    rates.add({"a.example": 10, "b.example": 4}, now=125.0)  # a pause: the window forgets the burst
    assert rates.rates() == {"a.example": 0.0, "b.example": 0.0}


def test_the_display_shows_requests_programs_errors_and_each_hosts_rate():
    report = CrawlReport("glslsandbox", added=120, updated=3, failed=2, parse_errors=1)
    progress = CrawlProgress(report, 130, {"glslsandbox.com": 130})
    console = Console(record=True, width=120, force_terminal=True)
    console.print(render("glslsandbox", progress, {"glslsandbox.com": 1.04}, 75.0))
    text = console.export_text()
    assert "130 requests" in text and "120 programs added" in text and "3 updated" in text
    assert "3 errors" in text and "01:15" in text
    assert "glslsandbox.com" in text and "1.0/s" in text
