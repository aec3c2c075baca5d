"""A GLSL Sandbox crawl against a loopback server: programs stored once, politeness kept,
failures recorded, a block page stopping the source, and a resumed crawl fetching nothing twice."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from corpus.models import Program, RawDocument
from harvest.crawling import crawl
from harvest.frontier import Frontier
from harvest.raw import iter_raw_documents
from tests.harvest.fixture_server import Answer, FixtureServer
from tests.harvest.helpers import HTML, crawl_process, fast, gallery, item, stored


@pytest.fixture
def sandbox():
    with FixtureServer() as s:
        s.route(
            "/robots.txt",
            Answer(200, b"User-agent: *\nDisallow: /item/666.0\n", {"Content-Type": "text/plain"}),
        )
        s.route("/?page=0", Answer(200, gallery(["1.0", "2.0", "3.0"]), HTML))
        s.route("/?page=1", Answer(200, gallery(["4.0", "5.0", "666.0"]), HTML))
        s.route("/?page=2", Answer(200, gallery([]), HTML))
        for n in (1, 2, 3, 5):
            s.route(f"/item/{n}.0", Answer(200, item(n)))
        s.route("/item/4.0", Answer(503), Answer(200, item(4)))
        yield s


def test_a_crawl_stores_every_reachable_program_once_and_keeps_raw_documents(catalogue, sandbox):
    report = crawl(catalogue, "glslsandbox", base_url=sandbox.base, policy=fast())
    assert stored(catalogue) == ["1.0", "2.0", "3.0", "4.0", "5.0"]
    assert report.added == 5 and report.failed == 1  # 666.0 is disallowed by robots.txt
    assert sandbox.hits_for("/item/666.0") == []
    assert len(sandbox.hits_for("/item/4.0")) == 2  # the 503 was retried
    assert Frontier(catalogue, "glslsandbox").counts()["done"] == 8
    docs = list(iter_raw_documents(catalogue, "glslsandbox"))
    assert len(docs) == 8 and any(b"gl_FragColor" in body for *_, body in docs)
    with catalogue.session() as s:
        assert s.execute(select(Program.raw_document_id).where(Program.external_id == "1.0")).scalar() in {
            d for d, *_ in docs
        }
        assert s.execute(select(RawDocument.url).limit(1)).scalar().startswith(sandbox.base)


def test_a_second_crawl_asks_for_the_start_page_conditionally_and_fetches_no_item_again(catalogue, sandbox):
    first = gallery(["1.0", "2.0", "3.0"])
    sandbox.route(
        "/?page=0",
        Answer(200, first, HTML | {"ETag": '"g0"'}),
        Answer(304, b"", {"ETag": '"g0"'}),
    )
    crawl(catalogue, "glslsandbox", base_url=sandbox.base, policy=fast())
    before = len(sandbox.hits)
    report = crawl(catalogue, "glslsandbox", base_url=sandbox.base, policy=fast())
    again = [h.path for h in sandbox.hits[before:]]
    assert sorted(again) == ["/?page=0", "/robots.txt"]
    assert sandbox.hits_for("/?page=0")[-1].headers["If-None-Match"] == '"g0"'
    assert (report.requests_done, report.added, report.failed) == (1, 0, 0)
    assert stored(catalogue) == ["1.0", "2.0", "3.0", "4.0", "5.0"]


def test_a_second_crawl_finds_new_programs_and_pages_on_only_while_pages_bring_news(catalogue, sandbox):
    crawl(catalogue, "glslsandbox", base_url=sandbox.base, policy=fast())
    before = len(sandbox.hits)
    # two new effects on top of the newest-first gallery push one known effect onto page 1
    sandbox.route("/?page=0", Answer(200, gallery(["8.0", "7.0", "1.0"]), HTML))
    sandbox.route("/?page=1", Answer(200, gallery(["2.0", "3.0", "4.0"]), HTML))
    for n in (7, 8):
        sandbox.route(f"/item/{n}.0", Answer(200, item(n)))
    report = crawl(catalogue, "glslsandbox", base_url=sandbox.base, policy=fast())
    again = sorted(h.path for h in sandbox.hits[before:])
    # page 1 brings nothing new, so page 2 is not asked for; no known item is fetched again
    assert again == ["/?page=0", "/?page=1", "/item/7.0", "/item/8.0", "/robots.txt"]
    assert report.added == 2
    assert stored(catalogue) == ["1.0", "2.0", "3.0", "4.0", "5.0", "7.0", "8.0"]


def test_a_crawl_stopped_at_its_limit_leaves_the_rest_queued_and_the_next_finishes_it(catalogue):
    import sqlite3

    with FixtureServer() as s:
        s.route("/robots.txt", Answer(200, b"", {"Content-Type": "text/plain"}))
        s.route("/?page=0", Answer(200, gallery([f"{n}.0" for n in range(1, 11)]), HTML))
        s.route("/?page=1", Answer(200, gallery([]), HTML))
        for n in range(1, 11):
            s.route(f"/item/{n}.0", Answer(200, item(n)))
        first = crawl(catalogue, "glslsandbox", base_url=s.base, policy=fast(), limit=2)
        assert 2 <= first.added < 10
        counts = Frontier(catalogue, "glslsandbox").counts()
        assert counts["in_flight"] == 0 and counts["pending"] == 10 - first.added
        con = sqlite3.connect(catalogue.engine.url.database)
        # claimed ahead but never fetched: back in the queue with no attempt counted
        attempts = con.execute("SELECT max(attempts) FROM crawl_request WHERE state = 'pending'").fetchone()
        assert attempts == (0,)
        con.close()
        second = crawl(catalogue, "glslsandbox", base_url=s.base, policy=fast())
        assert first.added + second.added == 10
        assert stored(catalogue) == sorted(f"{n}.0" for n in range(1, 11))
        assert all(len(s.hits_for(f"/item/{n}.0")) == 1 for n in range(1, 11))


def test_a_challenge_page_stops_the_source_and_parks_its_requests(catalogue, sandbox):
    sandbox.route("/item/2.0", Answer(403, b"<html><title>Just a moment...</title>cf-chl</html>", HTML))
    report = crawl(catalogue, "glslsandbox", base_url=sandbox.base, policy=fast())
    assert report.blocked and "challenge" in report.blocked
    counts = Frontier(catalogue, "glslsandbox").counts()
    assert counts["blocked"] >= 1 and counts["pending"] == 0 and counts["in_flight"] == 0


def test_a_changed_page_layout_is_a_parse_error_that_keeps_the_document(catalogue, sandbox):
    sandbox.route("/item/3.0", Answer(200, b"<html>we moved</html>", HTML))
    report = crawl(catalogue, "glslsandbox", base_url=sandbox.base, policy=fast())
    assert report.parse_errors == 1 and "3.0" not in stored(catalogue)
    urls = [url for _, url, *_ in iter_raw_documents(catalogue, "glslsandbox")]
    assert sandbox.base + "/item/3.0" in urls


def test_crawl_and_status_through_the_cli(tmp_path, sandbox, capsys):
    from corpus.cliutils import run_app
    from harvest.cli import app

    db = str(tmp_path / "c.db")
    args = ["crawl", "glslsandbox", "--base-url", sandbox.base, "--delay", "0", "--db", db, "--json"]
    assert run_app(app, "harvest", args) == 0
    assert json.loads(capsys.readouterr().out)["added"] == 5
    assert run_app(app, "harvest", ["status", "--db", db, "--json"]) == 0
    rows = {r["source"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert (rows["glslsandbox"]["done"], rows["glslsandbox"]["failed"]) == (8, 1)
    assert rows["shadertoy-api"]["done"] == 0
    sandbox.route("/?page=0", Answer(403, b"<html>Attention Required! | Cloudflare</html>", HTML))
    assert (
        run_app(
            app,
            "harvest",
            ["crawl", "glslsandbox", "--base-url", sandbox.base, "--db", str(tmp_path / "d.db")],
        )
        == 8
    )
    assert "try much later" in capsys.readouterr().err


def test_reparse_rebuilds_programs_from_raw_documents_without_the_network(catalogue, sandbox):
    from sqlalchemy import delete

    from harvest.reparse import reparse

    crawl(catalogue, "glslsandbox", base_url=sandbox.base, policy=fast())
    with catalogue.session() as s:
        s.execute(delete(Program))
    hits = len(sandbox.hits)
    report = reparse(catalogue, "glslsandbox", base_url=sandbox.base)
    assert (report.documents, report.added, report.parse_errors) == (8, 5, 0)
    assert stored(catalogue) == ["1.0", "2.0", "3.0", "4.0", "5.0"]
    assert len(sandbox.hits) == hits


def test_retry_failed_queues_failures_for_the_next_crawl(tmp_path, sandbox, capsys):
    from corpus.cliutils import run_app
    from harvest.cli import app

    sandbox.route("/item/5.0", Answer(404, b"gone"))
    db = str(tmp_path / "c.db")
    assert (
        run_app(
            app, "harvest", ["crawl", "glslsandbox", "--base-url", sandbox.base, "--delay", "0", "--db", db]
        )
        == 0
    )
    sandbox.route("/item/5.0", Answer(200, item(5)))
    assert run_app(app, "harvest", ["retry-failed", "glslsandbox", "--db", db]) == 0
    assert (
        "2 requests of glslsandbox queued again" in capsys.readouterr().out
    )  # 5.0 and the robots-disallowed 666.0
    args = ["crawl", "glslsandbox", "--base-url", sandbox.base, "--delay", "0", "--db", db, "--json"]
    assert run_app(app, "harvest", args) == 0
    assert json.loads(capsys.readouterr().out)["added"] == 1


def test_a_sigkilled_crawl_resumes_without_fetching_anything_done_again(tmp_path):
    import os
    import signal
    import sqlite3
    import subprocess

    from tests.conftest import ROOT, wait_for_count

    with FixtureServer() as s:
        s.route("/robots.txt", Answer(200, b"", {"Content-Type": "text/plain"}))
        for page in range(3):
            ids = [f"{page * 20 + i + 1}.0" for i in range(20)]
            s.route(f"/?page={page}", Answer(200, gallery(ids), HTML))
            for n in range(page * 20 + 1, page * 20 + 21):
                s.route(f"/item/{n}.0", Answer(200, item(n), delay=0.03))
        s.route("/?page=3", Answer(200, gallery([]), HTML))
        db = tmp_path / "c.db"
        cmd, proc = crawl_process("glslsandbox", s.base, db, "--delay", "0")
        wait_for_count(db, "SELECT count(*) FROM crawl_request WHERE state = 'done'", 15)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        con = sqlite3.connect(db)
        done_urls = [u for (u,) in con.execute("SELECT url FROM crawl_request WHERE state = 'done'")]
        con.close()
        assert 15 <= len(done_urls) < 64, "the crawl finished before it could be killed"
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
        assert json.loads(out.stdout)["blocked"] is None
        con = sqlite3.connect(db)
        assert con.execute("SELECT count(*), count(DISTINCT external_id) FROM program").fetchone() == (60, 60)
        assert con.execute("SELECT count(*) FROM crawl_request WHERE state != 'done'").fetchone()[0] == 0
        con.close()
        for url in done_urls:  # nothing done before the kill was fetched again
            path = url.removeprefix(s.base)
            assert len(s.hits_for(path)) == 1, path
        refetched = [p for p in {h.path for h in s.hits} if p.startswith("/item/") and len(s.hits_for(p)) > 1]
        assert len(refetched) <= 8  # at most the requests that were in flight (claims of 2 x 4)


def test_a_sigkill_repeats_only_what_was_in_flight_and_the_last_second(tmp_path):
    """At a polite pace a batch of claimed requests takes seconds: responses are written at least
    every second, so a kill mid-batch costs the site only the requests of the last second."""
    import os
    import signal
    import sqlite3
    import subprocess
    import time

    from harvest.crawl_http import FLUSH_EVERY_S
    from tests.conftest import ROOT

    n, delay, concurrency = 64, 0.05, 16  # a batch of 4 x 16 requests takes 3.2 s at 20/s
    with FixtureServer() as s:
        s.route("/robots.txt", Answer(200, b"", {"Content-Type": "text/plain"}))
        s.route("/?page=0", Answer(200, gallery([f"{i}.0" for i in range(1, n + 1)]), HTML))
        s.route("/?page=1", Answer(200, gallery([]), HTML))
        for i in range(1, n + 1):
            s.route(f"/item/{i}.0", Answer(200, item(i)))
        db = tmp_path / "c.db"
        cmd, proc = crawl_process(
            "glslsandbox", s.base, db, "--delay", str(delay), "--concurrency", str(concurrency)
        )
        deadline = time.monotonic() + 60
        while len([h for h in s.hits if h.path.startswith("/item/")]) < 48 and time.monotonic() < deadline:
            time.sleep(0.005)
        killed_at = time.monotonic()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        hits_before = list(s.hits)
        assert 48 <= sum(h.path.startswith("/item/") for h in hits_before) < n, "killed too late"
        subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
        con = sqlite3.connect(db)
        assert con.execute("SELECT count(DISTINCT external_id) FROM program").fetchone() == (n,)
        con.close()
        refetched = {p for p in {h.path for h in s.hits} if p.startswith("/item/") and len(s.hits_for(p)) > 1}
    # what a kill may cost: requests unanswered at the kill, and those answered in the last
    # second (half a second more for the time a transaction takes on a busy machine)
    recent = {
        h.path
        for h in hits_before
        if h.path.startswith("/item/") and (not h.end or h.end >= killed_at - FLUSH_EVERY_S - 0.5)
    }
    assert refetched <= recent
    assert len(refetched) < 40  # a whole batch of 48 (the old, batch-only writes) is well over
