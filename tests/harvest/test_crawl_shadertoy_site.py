"""The shadertoy-site source: pages we write, served on loopback in the site's own formats
(``var gShaders=[…]``, ``var gShaderIDs=[…]`` and the batch ``POST /shadertoy``), and the parser
on the real pages in ../shared/samples (skipped when they are absent)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import pytest
from sqlalchemy import select

from corpus.errors import InputFormatError
from corpus.models import CrawlRequest, Program
from corpus.queries import show_program
from harvest.crawling import crawl
from harvest.frontier import Frontier
from harvest.raw import iter_raw_documents
from harvest.reparse import reparse
from harvest.sources.shadertoy_site import RESULTS_PAGE, USER_PAGE, ShadertoySite
from tests.conftest import SHARED_SAMPLES, needs_samples
from tests.harvest.fixture_server import Answer, FixtureServer, Hit
from tests.harvest.helpers import KEY, fast, stored
from tests.harvest.helpers import shader as api_shader

HTML = {"Content-Type": "text/html; charset=utf-8"}
# What the site's own script says about gShaderIDs before any page data: a use, not an assignment.
LIBRARY = "function resultsInit(n){ var num = Math.min(gShaderIDs.length, n); return gShaderIDs[0]; }"


def code_of(sid: str) -> str:
    return f"void mainImage(out vec4 c, in vec2 p){{ c = vec4(p / iResolution.xy, 0.5, 1.0); }} // {sid}"


def shader(sid: str, date: int = 1700000000, *, multipass: bool = False) -> dict:
    """A shader in the site's JSON: inputs as ``filepath``/``type``, buffers named "Buf A"."""
    image_inputs = []
    passes = []
    if multipass:
        feedback = {"id": "4dXGR8", "filepath": "/media/previz/buffer00.png", "type": "buffer", "channel": 0}
        image_inputs = [dict(feedback, sampler={"filter": "linear", "wrap": "clamp"})]
        passes.append(
            {
                "inputs": [dict(feedback, sampler={"filter": "linear", "wrap": "clamp"})],
                "outputs": [{"id": "4dXGR8", "channel": 0}],
                "code": f"void mainImage(out vec4 c, in vec2 p){{ c = vec4(0.1); }} // buffer of {sid}",
                "name": "Buf A",
                "description": "",
                "type": "buffer",
            }
        )
    passes.append(
        {
            "inputs": image_inputs,
            "outputs": [{"id": "4dfGRr", "channel": 0}],
            "code": code_of(sid),
            "name": "Image",
            "description": "",
            "type": "image",
        }
    )
    info = {"id": sid, "date": str(date), "name": f"site shader {sid}", "username": "siteuser"}
    return {"ver": "0.1", "info": info, "renderpass": passes}


def page(variable: str, items: list, claimed_results: int = 9999) -> bytes:
    """A results or user page: the site's scripts, then the page's data in one script block."""
    data = json.dumps(items, separators=(",", ":")).replace("/", "\\/")
    return (
        "<!DOCTYPE html><html><head><title>Shadertoy BETA</title>"
        f"<script>{LIBRARY}</script></head><body>"
        f'<div class="navigation"><span>Results ({claimed_results}):</span></div><div id="shaderGrid"></div>'
        f'<script>\n    var {variable}={data};    var gUseScreenshots = 0;\n    var gThemeName = "classic";\n'
        "</script></body></html>"
    ).encode()


def results_path(start: int, sort: str = "newest", query: str = "") -> str:
    return f"/results?query={query}&sort={sort}&from={start}&num={RESULTS_PAGE}"


def user_path(name: str, start: int, sort: str = "popular") -> str:
    return f"/user/{name}/sort={sort}&from={start}&num={USER_PAGE}"


def ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i:03d}" for i in range(n)]


def batch_endpoint(known: dict[str, dict | None]):
    """``POST /shadertoy``: the shaders the form asks for, in its order (``null`` for unknown ones),
    and 400 for a request that is not the site's form."""

    def answer(hit: Hit) -> Answer:
        form = parse_qs(hit.body.decode())
        if "x-www-form-urlencoded" not in hit.headers.get("Content-Type", "") or set(form) != {
            "s",
            "nt",
            "nl",
            "np",
        }:
            return Answer(400, b"bad form")
        wanted = json.loads(form["s"][0])["shaders"]
        return Answer(200, json.dumps([known.get(i) for i in wanted]).encode())

    return answer


@pytest.fixture
def site():
    with FixtureServer() as s:
        s.route(
            "/robots.txt", Answer(200, b"User-agent: *\nDisallow: /view/\n", {"Content-Type": "text/plain"})
        )
        yield s


def test_browse_pages_store_every_program_once_and_paging_stops_at_a_page_with_nothing_new(catalogue, site):
    first, second = ids("aaA", RESULTS_PAGE), ids("bbB", 5)
    site.route(results_path(0), Answer(200, page("gShaders", [shader(i) for i in first]), HTML))
    second_page = page("gShaders", [shader(i, multipass=True) for i in second])
    site.route(results_path(RESULTS_PAGE), Answer(200, second_page, HTML))
    site.route(results_path(2 * RESULTS_PAGE), Answer(200, second_page, HTML))  # the last page, repeated
    report = crawl(catalogue, "shadertoy-site", base_url=site.base, policy=fast())
    assert (report.added, report.failed, report.parse_errors) == (17, 0, 0)
    assert stored(catalogue) == sorted(first + second)
    assert len(site.hits_for(results_path(2 * RESULTS_PAGE))) == 1  # fetched once: it added nothing
    assert site.hits_for(results_path(3 * RESULTS_PAGE)) == []  # the count said 9999: not believed
    one = show_program(catalogue, f"shadertoy:{second[0]}")
    assert [p["name"] for p in one["passes"]] == ["Buffer A", "Image"]
    assert one["passes"][1]["code"] == code_of(second[0])
    assert one["passes"][1]["inputs"][0]["ref"] == "Buffer A"
    assert show_program(catalogue, f"shadertoy:{first[3]}")["passes"][0]["code"] == code_of(first[3])


def test_a_page_of_ids_is_fetched_with_the_sites_batch_post(catalogue, site):
    listed = ids("usR", USER_PAGE + 3)
    known = {i: shader(i) for i in listed if i != "usR004"}  # usR004 was deleted: the site says null
    site.route(user_path("alice", 0), Answer(200, page("gShaderIDs", listed[:USER_PAGE]), HTML))
    site.route(user_path("alice", USER_PAGE), Answer(200, page("gShaderIDs", listed[USER_PAGE:]), HTML))
    site.route(user_path("alice", 2 * USER_PAGE), Answer(200, page("gShaderIDs", []), HTML))
    site.route("/shadertoy", batch_endpoint(known))
    report = crawl(catalogue, "shadertoy-site", base_url=site.base, policy=fast(), options={"user": "alice"})
    assert (report.added, report.failed, report.parse_errors) == (USER_PAGE + 2, 0, 0)
    assert stored(catalogue) == sorted(known)
    posts = site.hits_for("/shadertoy")
    assert [h.method for h in posts] == ["POST", "POST"]
    asked = [json.loads(parse_qs(h.body.decode())["s"][0])["shaders"] for h in posts]
    assert sorted(asked) == [listed[:USER_PAGE], listed[USER_PAGE:]]
    assert all(parse_qs(h.body.decode())["nt"] == ["1"] for h in posts)
    assert site.hits_for(user_path("alice", 3 * USER_PAGE)) == []  # the empty page ended the listing
    assert show_program(catalogue, "shadertoy:usR009")["passes"][0]["code"] == code_of("usR009")


def test_a_changed_layout_is_a_parse_error_naming_the_url_and_other_programs_are_stored(catalogue, site):
    first = ids("okA", RESULTS_PAGE)
    site.route(results_path(0), Answer(200, page("gShaders", [shader(i) for i in first]), HTML))
    moved = b"<html><body><div id='grid'>Results (20): the new grid loads with fetch()</div></body></html>"
    site.route(results_path(RESULTS_PAGE), Answer(200, moved, HTML))
    report = crawl(catalogue, "shadertoy-site", base_url=site.base, policy=fast())
    assert (report.added, report.parse_errors) == (RESULTS_PAGE, 1)
    assert stored(catalogue) == sorted(first)
    with catalogue.session() as s:
        error = s.execute(select(CrawlRequest.last_error).where(CrawlRequest.state == "failed")).scalar_one()
    assert site.base + results_path(RESULTS_PAGE) in error and "gShaders" in error
    urls = [url for _, url, *_ in iter_raw_documents(catalogue, "shadertoy")]
    assert site.base + results_path(RESULTS_PAGE) in urls


def test_a_shader_that_does_not_parse_in_a_batch_is_asked_again_alone_and_fails_alone(catalogue, site):
    listed = ids("btC", 4)
    broken = dict(shader("btC002"), renderpass=[])  # no passes: the format of this one changed
    known = {i: shader(i) for i in listed} | {"btC002": broken}
    site.route(user_path("bob", 0), Answer(200, page("gShaderIDs", listed), HTML))
    site.route(user_path("bob", USER_PAGE), Answer(200, page("gShaderIDs", []), HTML))
    site.route("/shadertoy", batch_endpoint(known))
    report = crawl(catalogue, "shadertoy-site", base_url=site.base, policy=fast(), options={"user": "bob"})
    assert (report.added, report.parse_errors) == (3, 1)
    assert stored(catalogue) == ["btC000", "btC001", "btC003"]
    with catalogue.session() as s:
        failed = s.execute(
            select(CrawlRequest.body, CrawlRequest.last_error).where(CrawlRequest.state == "failed")
        )
        (body, error), *others = failed.all()
    assert others == [] and "btC002" in error and "/shadertoy" in error
    assert json.loads(parse_qs(body)["s"][0]) == {"shaders": ["btC002"]}


def test_a_bot_challenge_stops_the_source(catalogue, site):
    site.route(
        results_path(0), Answer(200, page("gShaders", [shader(i) for i in ids("chD", RESULTS_PAGE)]), HTML)
    )
    challenge = b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>cf-chl</body></html>"
    site.route(results_path(RESULTS_PAGE), Answer(403, challenge, HTML))
    report = crawl(catalogue, "shadertoy-site", base_url=site.base, policy=fast())
    assert report.blocked and "challenge" in report.blocked
    assert report.added == RESULTS_PAGE
    counts = Frontier(catalogue, "shadertoy-site").counts()
    assert counts["blocked"] == 1 and counts["pending"] == 0 and counts["in_flight"] == 0
    assert len(site.hits_for(results_path(RESULTS_PAGE))) == 1  # never tried again


def test_since_stops_a_newest_listing_at_a_page_of_older_shaders(catalogue, site):
    since = 1_700_000_000
    dates = [since + 500, since + 10, since - 10, since - 5000]  # newest first, as the site sorts
    for n, date in enumerate(dates):
        items = [shader(f"snc{n}{i:02d}", date - i) for i in range(RESULTS_PAGE)]
        site.route(results_path(n * RESULTS_PAGE), Answer(200, page("gShaders", items), HTML))
    report = crawl(
        catalogue, "shadertoy-site", base_url=site.base, policy=fast(), options={"since": float(since)}
    )
    assert report.failed == 0
    assert len(site.hits_for(results_path(2 * RESULTS_PAGE))) == 1  # the first page all older than --since
    assert site.hits_for(results_path(3 * RESULTS_PAGE)) == []


def test_reparse_reads_pages_and_batch_answers_and_leaves_the_api_sources_documents_alone(catalogue, site):
    from sqlalchemy import delete

    site.route(
        "/api/v1/shaders?key=" + KEY, Answer(200, json.dumps({"Shaders": 1, "Results": ["apiZ01"]}).encode())
    )
    site.route("/api/v1/shaders/apiZ01?key=" + KEY, Answer(200, api_shader("apiZ01", 1)))
    crawl(catalogue, "shadertoy-api", base_url=site.base, key=KEY, policy=fast())
    whole = [shader(i) for i in ids("rpA", 3)]
    site.route(results_path(0), Answer(200, page("gShaders", whole), HTML))
    site.route(results_path(RESULTS_PAGE), Answer(200, page("gShaderIDs", ids("rpB", 2)), HTML))
    site.route(results_path(2 * RESULTS_PAGE), Answer(200, page("gShaderIDs", []), HTML))
    site.route("/shadertoy", batch_endpoint({i: shader(i) for i in ids("rpB", 2)}))
    assert crawl(catalogue, "shadertoy-site", base_url=site.base, policy=fast()).added == 5
    with catalogue.session() as s:
        s.execute(delete(Program))
    hits = len(site.hits)
    report = reparse(catalogue, "shadertoy-site", base_url=site.base)
    assert (report.documents, report.added, report.parse_errors) == (4, 5, 0)  # 3 pages, 1 batch answer
    assert stored(catalogue) == sorted(ids("rpA", 3) + ids("rpB", 2))
    api = reparse(catalogue, "shadertoy-api", base_url=site.base)
    assert (api.documents, api.added, api.parse_errors) == (2, 1, 0)
    assert len(site.hits) == hits


def test_crawl_a_users_pages_through_the_cli(tmp_path, site, capsys):
    from corpus.cliutils import run_app
    from harvest.cli import app

    site.route(user_path("carol", 0, "newest"), Answer(200, page("gShaders", [shader("clI001")]), HTML))
    site.route(user_path("carol", USER_PAGE, "newest"), Answer(200, page("gShaders", []), HTML))
    db = str(tmp_path / "c.db")
    args = ["crawl", "shadertoy-site", "--base-url", site.base, "--user", "carol", "--sort", "newest"]
    assert run_app(app, "harvest", [*args, "--delay", "0", "--db", db, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["added"] == 1
    assert run_app(app, "harvest", ["sources", "--json"]) == 0
    rows = {r["name"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert "shadertoy-site" in rows["shadertoy"]["crawled_by"]
    assert rows["shadertoy"]["default_licence"] == "CC-BY-NC-SA-3.0" and rows["shadertoy"]["terms_url"]


# -- the parser on real pages (../shared/samples/shadertoy-site) ---------------------------------

SAMPLES = SHARED_SAMPLES / "shadertoy-site"
BASE = "https://www.shadertoy.com"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


@needs_samples
@pytest.mark.parametrize(
    ("name", "url", "count", "following"),
    [
        (
            "results_results_newest_0_12.html",
            "/results?query=&sort=newest&from=0&num=12",
            12,
            "from=12&num=12",
        ),
        (
            "results_results_newest_12_12.html",
            "/results?query=&sort=newest&from=12&num=12",
            12,
            "from=24&num=12",
        ),
        (
            "results_results_0_12.html",
            "/results?query=raymarch&sort=love&from=0&num=12",
            12,
            "from=12&num=12",
        ),
        ("user_iq_0_8.html", "/user/iq/sort=popular&from=0&num=8", 8, "from=8&num=8"),
    ],
)
def test_real_pages_give_their_shaders_and_the_next_page(name, url, count, following):
    parsed = ShadertoySite().parse(None, BASE + url, sample(name), BASE)
    assert len(parsed.records) == count and parsed.requests == []
    assert len({r.external_id for r in parsed.records}) == count
    assert all(r.source == "shadertoy" and r.created_at is not None for r in parsed.records)
    assert all(any(p.type == "image" and p.code.strip() for p in r.passes) for r in parsed.records)
    assert [r.url for r in parsed.paging] == [BASE + url.split("from=")[0] + following]


@needs_samples
def test_real_multipass_pages_name_buffers_the_canonical_way():
    parsed = ShadertoySite().parse(
        None,
        BASE + "/results?query=raymarch&sort=love&from=0&num=12",
        sample("results_results_0_12.html"),
        BASE,
    )
    names = {p.name for r in parsed.records for p in r.passes}
    assert "Buf A" not in names and "Buffer A" in names
    buffers = [i for r in parsed.records for p in r.passes for i in p.inputs if i.kind == "buffer"]
    assert buffers and all(i.ref in {"Buffer A", "Buffer B", "Buffer C", "Buffer D"} for i in buffers)


@needs_samples
def test_a_real_user_page_with_no_shaders_is_empty_not_an_error():
    parsed = ShadertoySite().parse(
        None, BASE + "/user/shaderflix/sort=popular&from=0&num=8", sample("user_no_shaders.html"), BASE
    )
    assert (parsed.records, parsed.requests, parsed.paging) == ([], [], [])


@needs_samples
def test_a_real_page_without_script_blocks_is_a_parse_error_naming_the_url():
    url = BASE + "/results?query=&sort=popular&from=0&num=12"
    with pytest.raises(InputFormatError, match="neither gShaders nor gShaderIDs") as err:
        ShadertoySite().parse(None, url, sample("results_no_script_blocks.html"), BASE)
    assert url in err.value.message and "reparse" in err.value.hint


@needs_samples
def test_real_shaders_read_as_a_batch_answer():
    files = sorted((SAMPLES / "shaders").glob("*.json"))
    shaders = [json.loads(f.read_text(encoding="utf-8")) for f in files]
    parsed = ShadertoySite().parse(None, BASE + "/shadertoy", json.dumps([*shaders, None]).encode(), BASE)
    assert [r.external_id for r in parsed.records] == [s["info"]["id"] for s in shaders]
    assert parsed.requests == [] and parsed.paging == []
    kinds = {i.kind for r in parsed.records for p in r.passes for i in p.inputs}
    assert kinds and kinds <= {
        "buffer",
        "texture",
        "cubemap",
        "volume",
        "keyboard",
        "music",
        "musicstream",
        "video",
        "mic",
        "webcam",
    }
