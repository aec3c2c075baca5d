"""The shadertoy-api source against a loopback server speaking the API's format."""

from __future__ import annotations

import json
import sqlite3

import pytest

from corpus.errors import UsageProblem
from harvest.crawling import crawl
from harvest.fetcher import FetchPolicy
from tests.harvest.fixture_server import Answer, FixtureServer
from tests.harvest.helpers import KEY, shader


@pytest.fixture
def api():
    with FixtureServer() as s:
        s.route("/robots.txt", Answer(200, b"", {"Content-Type": "text/plain"}))
        ids = ["apiA01", "apiA02", "apiA03", "gone01"]
        s.route(
            f"/api/v1/shaders?key={KEY}", Answer(200, json.dumps({"Shaders": 4, "Results": ids}).encode())
        )
        for n, sid in enumerate(ids[:3], 1):
            s.route(f"/api/v1/shaders/{sid}?key={KEY}", Answer(200, shader(sid, n)))
        s.route(f"/api/v1/shaders/gone01?key={KEY}", Answer(200, b'{"Error": "Shader not found"}'))
        yield s


def test_all_ids_then_each_shader_with_api_errors_recorded_and_the_key_never_stored(tmp_path, api):
    from corpus.db import open_catalogue

    db = tmp_path / "c.db"
    report = crawl(
        open_catalogue(str(db), create=True),
        "shadertoy-api",
        base_url=api.base,
        key=KEY,
        policy=FetchPolicy(delay=0.0, backoff_base=0.05),
    )
    assert (report.added, report.parse_errors) == (3, 1)
    con = sqlite3.connect(db)
    assert sorted(r for (r,) in con.execute("SELECT external_id FROM program")) == [
        "apiA01",
        "apiA02",
        "apiA03",
    ]
    error = con.execute("SELECT last_error FROM crawl_request WHERE state = 'failed'").fetchone()[0]
    assert "Shader not found" in error
    con.close()
    assert len(api.hits_for(f"/api/v1/shaders/gone01?key={KEY}")) == 1  # a clear no is not asked again
    for f in (db, db.with_name(db.name + "-wal")):  # the key is in neither the file nor its WAL
        assert not f.exists() or KEY.encode() not in f.read_bytes()
    assert b"apiA01" in db.read_bytes() + db.with_name(db.name + "-wal").read_bytes()
    assert all("key=" + KEY in h.path for h in api.hits if h.path.startswith("/api/"))


def test_the_api_source_needs_a_key(catalogue):
    with pytest.raises(UsageProblem, match="needs an API key") as err:
        crawl(catalogue, "shadertoy-api", base_url="http://127.0.0.1:9")
    assert "SHADERTOY_API_KEY" in err.value.hint


def test_a_query_pages_until_a_short_page(tmp_path, api):
    from corpus.db import open_catalogue
    from harvest.sources import shadertoy_api

    page = shadertoy_api.PAGE
    first = [f"q{i:04d}" for i in range(page)]
    api.route(
        f"/api/v1/shaders/query/plasma?sort=newest&from=0&num={page}&key={KEY}",
        Answer(200, json.dumps({"Shaders": page + 1, "Results": first[:page]}).encode()),
    )
    api.route(
        f"/api/v1/shaders/query/plasma?sort=newest&from={page}&num={page}&key={KEY}",
        Answer(200, json.dumps({"Shaders": page + 1, "Results": ["apiA01"]}).encode()),
    )
    for i, sid in enumerate(first):
        api.route(f"/api/v1/shaders/{sid}?key={KEY}", Answer(200, shader(sid, i % 9)))
    cat = open_catalogue(str(tmp_path / "q.db"), create=True)
    report = crawl(
        cat,
        "shadertoy-api",
        base_url=api.base,
        key=KEY,
        options={"query": "plasma"},
        policy=FetchPolicy(delay=0.0, concurrency=4),
    )
    assert report.added == page + 1


def test_key_redaction_masks_the_key_parameter_not_the_letters_of_a_short_key():
    from harvest.crawl_http import without_key

    message = "http://h/api/v1/shaders/x?key=e: HTTP 503 after 5 attempts (see the server's notes)"
    assert without_key(message, "e") == message.replace("key=e:", "key=***:")
    assert without_key("GET /a?b=1&key=s3cret%2Bk&c=2 failed", "s3cret+k") == "GET /a?b=1&key=***&c=2 failed"


def failed_errors(db) -> dict[str, str]:
    con = sqlite3.connect(db)
    rows = con.execute("SELECT url, last_error FROM crawl_request WHERE state = 'failed'").fetchall()
    con.close()
    return {url.rsplit("/", 1)[-1]: error for url, error in rows}


def test_a_one_letter_key_leaves_stored_errors_readable(tmp_path):
    from corpus.db import open_catalogue

    with FixtureServer() as s:
        s.route("/robots.txt", Answer(200, b"", {"Content-Type": "text/plain"}))
        s.route("/api/v1/shaders?key=e", Answer(200, json.dumps({"Results": ["gone01", "busy01"]}).encode()))
        s.route("/api/v1/shaders/gone01?key=e", Answer(200, b'{"Error": "Shader not found"}'))
        s.route("/api/v1/shaders/busy01?key=e", Answer(503, b"unavailable"))
        db = tmp_path / "c.db"
        policy = FetchPolicy(delay=0.0, backoff_base=0.01, max_attempts=2)
        crawl(open_catalogue(str(db), create=True), "shadertoy-api", base_url=s.base, key="e", policy=policy)
    errors = failed_errors(db)
    assert "the API answered with an error: Shader not found" in errors["gone01"]
    assert errors["busy01"].endswith("/api/v1/shaders/busy01?key=***: HTTP 503 after 2 attempts")


def test_a_key_echoed_in_an_error_body_is_masked_and_the_rest_kept(tmp_path):
    from corpus.db import open_catalogue

    with FixtureServer() as s:
        s.route("/robots.txt", Answer(200, b"", {"Content-Type": "text/plain"}))
        s.route(f"/api/v1/shaders?key={KEY}", Answer(200, json.dumps({"Results": ["apiA01"]}).encode()))
        body = json.dumps({"Error": f"Invalid key {KEY}, get one at /myapps"}).encode()
        s.route(f"/api/v1/shaders/apiA01?key={KEY}", Answer(200, body))
        db = tmp_path / "c.db"
        crawl(
            open_catalogue(str(db), create=True),
            "shadertoy-api",
            base_url=s.base,
            key=KEY,
            policy=FetchPolicy(delay=0.0),
        )
    assert (
        "the API answered with an error: Invalid key ***, get one at /myapps" in failed_errors(db)["apiA01"]
    )
    assert KEY.encode() not in db.read_bytes() + db.with_name(db.name + "-wal").read_bytes()


def test_a_missing_key_is_a_usage_error_with_a_hint(tmp_path, capsys, monkeypatch):
    from corpus.cliutils import run_app
    from harvest.cli import app

    monkeypatch.delenv("SHADERTOY_API_KEY", raising=False)
    args = ["crawl", "shadertoy-api", "--base-url", "http://127.0.0.1:9", "--db", str(tmp_path / "c.db")]
    assert run_app(app, "harvest", args) == 2
    err = capsys.readouterr().err
    assert "error: shadertoy-api needs an API key" in err
    assert "hint: pass --key KEY or set SHADERTOY_API_KEY" in err


def test_odd_text_in_a_crawled_shader_is_stored_readably_and_unstorable_code_is_listed(tmp_path):
    from corpus.db import open_catalogue
    from corpus.queries import show_program

    odd_title = json.loads(shader("oddT01", 1))
    odd_title["Shader"]["info"]["name"] = "half \ud83d of an emoji\x00"
    nul_code = json.loads(shader("nulC01", 2))
    nul_code["Shader"]["renderpass"][0]["code"] += "\x00"
    with FixtureServer() as s:
        s.route("/robots.txt", Answer(200, b"", {"Content-Type": "text/plain"}))
        s.route(
            f"/api/v1/shaders?key={KEY}", Answer(200, json.dumps({"Results": ["oddT01", "nulC01"]}).encode())
        )
        s.route(f"/api/v1/shaders/oddT01?key={KEY}", Answer(200, json.dumps(odd_title).encode()))
        s.route(f"/api/v1/shaders/nulC01?key={KEY}", Answer(200, json.dumps(nul_code).encode()))
        catalogue = open_catalogue(str(tmp_path / "c.db"), create=True)
        report = crawl(catalogue, "shadertoy-api", base_url=s.base, key=KEY, policy=FetchPolicy(delay=0.0))
    assert report.added == 1
    assert show_program(catalogue, "shadertoy:oddT01")["title"] == "half \ufffd of an emoji"
    (skipped,) = report.skipped
    assert skipped.startswith("shadertoy:nulC01 (") and "holds a NUL character" in skipped
