"""What a person sees of failed requests: ``harvest status --failed`` (and ``--json``), the count
and the retry command after a crawl, and an error exit when every request failed."""

from __future__ import annotations

import json

import pytest

from corpus.cliutils import run_app
from harvest.cli import app
from harvest.fetcher import FetchFailed
from tests.harvest.fixture_server import Answer, FixtureServer
from tests.harvest.helpers import HTML, gallery, item


def harvest(*args: str) -> int:
    return run_app(app, "harvest", list(args))


def test_a_crawl_with_failures_says_how_many_and_how_to_retry_and_status_lists_them(tmp_path, capsys):
    db = str(tmp_path / "c.db")
    with FixtureServer() as s:
        s.route(
            "/robots.txt",
            Answer(200, b"User-agent: *\nDisallow: /item/3.0\n", {"Content-Type": "text/plain"}),
        )
        s.route("/?page=0", Answer(200, gallery(["1.0", "2.0", "3.0"]), HTML))
        s.route("/?page=1", Answer(200, gallery([]), HTML))
        s.route("/item/1.0", Answer(200, item(1)))
        s.route("/item/2.0", Answer(404, b"gone"))
        assert harvest("crawl", "glslsandbox", "--base-url", s.base, "--delay", "0", "--db", db) == 0
        base = s.base
    err = capsys.readouterr().err
    assert "2 requests failed (harvest status --failed lists them" in err
    assert "hint: harvest retry-failed glslsandbox queues them again" in err

    assert harvest("status", "--failed", "--db", db, "--json") == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    errors = {row["url"]: row["error"] for row in rows}
    assert errors == {
        f"{base}/item/2.0": "HTTP 404",
        f"{base}/item/3.0": f"robots.txt disallows {base}/item/3.0",
    }
    assert {row["source"] for row in rows} == {"glslsandbox"} and all(row["attempts"] == 1 for row in rows)

    assert harvest("status", "--failed", "--source", "glslsandbox", "--db", db) == 0
    table = capsys.readouterr().out
    assert "/item/2.0" in table and "HTTP 404" in table and "robots.txt disallows" in table
    assert harvest("status", "--failed", "--source", "shadertoy-api", "--db", db) == 0
    assert capsys.readouterr().out.strip() == "no failed requests"


def test_status_and_retry_failed_refuse_an_unknown_source(catalogue, capsys):
    db = catalogue.engine.url.database
    assert harvest("status", "--failed", "--source", "glslsandbx", "--db", db) == 2
    assert "unknown crawl source 'glslsandbx'" in capsys.readouterr().err
    assert harvest("retry-failed", "glslsandbx", "--db", db) == 2
    assert "use one of: glslsandbox, shadertoy-api" in capsys.readouterr().err


def test_a_crawl_in_which_every_request_failed_exits_with_the_reason(tmp_path, capsys):
    db = str(tmp_path / "c.db")
    with FixtureServer() as s:  # every path answers 404: not the site that was meant
        code = harvest("crawl", "glslsandbox", "--base-url", s.base, "--delay", "0", "--db", db, "--json")
    assert code == FetchFailed.exit_code == 7
    out, err = capsys.readouterr()
    assert json.loads(out)["failed"] == 1  # the report is still printed for a script
    assert f"error: every request of this crawl failed (1); the last: {s.base}/?page=0: HTTP 404" in err
    assert "hint: check the address (--base-url)" in err and "harvest retry-failed glslsandbox" in err


def test_a_spent_budget_leaves_the_rest_pending_and_a_rerun_says_what_it_does(tmp_path, capsys):
    db = str(tmp_path / "c.db")
    with FixtureServer() as s:
        s.route("/robots.txt", Answer(200, b"", {"Content-Type": "text/plain"}))
        s.route("/?page=0", Answer(200, gallery(["1.0", "2.0", "3.0", "4.0", "5.0"]), HTML))
        s.route("/?page=1", Answer(200, gallery([]), HTML))
        for n in range(1, 6):
            s.route(f"/item/{n}.0", Answer(200, item(n)))
        crawl = ["crawl", "glslsandbox", "--base-url", s.base, "--delay", "0", "--db", db]
        assert harvest(*crawl, "--budget", "3", "--json") == 0
        out, err = capsys.readouterr()
        assert json.loads(out)["failed"] == 0
        assert "stopped: the request budget of 3 spent; the requests left stay pending" in err
        assert harvest("status", "--failed", "--db", db) == 0
        assert capsys.readouterr().out.strip() == "no failed requests"
        assert harvest("status", "--db", db, "--json") == 0
        counts = json.loads(capsys.readouterr().out.splitlines()[0])
        assert counts["failed"] == 0 and counts["pending"] > 0

        assert harvest(*crawl) == 0
        err = capsys.readouterr().err
        assert f"glslsandbox: resuming an earlier crawl: {counts['pending']} requests still to do" in err
        assert harvest("status", "--db", db, "--json") == 0
        counts = json.loads(capsys.readouterr().out.splitlines()[0])
        assert (counts["pending"], counts["failed"], counts["done"]) == (0, 0, 7)


def test_a_rerun_after_a_failed_crawl_says_the_failed_requests_are_not_retried(tmp_path, capsys):
    db = str(tmp_path / "c.db")
    with FixtureServer() as s:  # every path answers 404
        crawl = ["crawl", "glslsandbox", "--base-url", s.base, "--delay", "0", "--db", db]
        assert harvest(*crawl) == 7
        capsys.readouterr()
        harvest(*crawl)
    err = capsys.readouterr().err
    assert "glslsandbox: the earlier crawl finished: asking its start pages again for what is new" in err
    assert (
        "glslsandbox: 1 requests that failed (or were blocked) in an earlier crawl are not retried:"
        " harvest retry-failed glslsandbox queues them again"
    ) in err


def test_a_sort_a_source_does_not_take_is_a_usage_error_listing_the_values(tmp_path, capsys):
    db = str(tmp_path / "c.db")
    assert (
        harvest("crawl", "shadertoy-site", "--base-url", "http://127.0.0.1:9", "--sort", "bogus", "--db", db)
        == 2
    )
    assert capsys.readouterr().err.splitlines() == [
        "error: unknown sort 'bogus' for shadertoy-site",
        "hint: use one of: newest, popular, love, hot",
    ]


@pytest.mark.parametrize(
    ("source", "option", "readers"),
    [
        ("glslsandbox", ["--user", "alice"], "shadertoy-site"),
        ("glslsandbox", ["--sort", "popular"], "shadertoy-api, shadertoy-site"),
        ("glslsandbox", ["--cache-dir", "x"], "git"),
    ],
)
def test_an_option_a_source_does_not_read_is_a_usage_error_with_a_hint(
    tmp_path, capsys, source, option, readers
):
    db = str(tmp_path / "c.db")
    assert harvest("crawl", source, "--base-url", "http://127.0.0.1:9", *option, "--db", db) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {option[0]} does not apply to {source}",
        f"hint: leave {option[0]} out; it is for: {readers}",
    ]
