"""corpus ls / show / stats as library calls: every filter selects what it says."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from corpus.errors import NotFoundError, UsageProblem
from corpus.queries import ProgramFilter, count_programs, list_programs, show_program, stats
from corpus.store import ProgramStore, mark_exact_duplicates
from tests.conftest import GRADIENT, make_record, on_postgresql
from tests.corpus.helpers import MIT, program_keys

pytestmark = pytest.mark.both_backends


@pytest.fixture
def filled(catalogue):
    recs = [
        make_record(
            "tunnel1",
            MIT + GRADIENT.replace("sin", "cos") + "float fbm(vec2 p){return p.x;}\n",
            title="Neon Tunnel",
            author="Ann",
        ),
        make_record("plasma", GRADIENT, title="Plasma", author="bob"),
        make_record("copy", "// same\n" + GRADIENT, title="Plasma copy", author="carl"),
        make_record(
            "sand.0", "void main(){gl_FragColor=vec4(1.0);}", source="glslsandbox", title=None, author="x"
        ),
    ]
    recs[0].tags = ["Tunnel", "neon"]
    recs[0].description = "a long tunnel of light"
    recs[1].tags = ["plasma"]
    recs[0].created_at = datetime(2019, 5, 1, tzinfo=UTC)
    recs[1].created_at = datetime(2014, 5, 1, tzinfo=UTC)
    recs[2].created_at = datetime(2016, 5, 1, tzinfo=UTC)
    recs[3].dialect = "glslsandbox"
    with catalogue.session() as s:
        ProgramStore(catalogue).store(recs, s.connection())
        mark_exact_duplicates(s.connection())
    return catalogue


def test_ls_rows_carry_the_documented_fields(filled):
    row = next(iter(list_programs(filled, ProgramFilter(sources=["shadertoy"]), limit=1)))
    for field in (
        "source",
        "external_id",
        "title",
        "author",
        "url",
        "licence_spdx",
        "licence_class",
        "licence_evidence",
        "code_sha256",
        "duplicate_of",
    ):
        assert field in row
    assert row["program"] == "shadertoy:copy" and row["duplicate_of"] == "shadertoy:plasma"


@pytest.mark.parametrize(
    "flt, expected",
    [
        (ProgramFilter(sources=["glslsandbox"]), ["glslsandbox:sand.0"]),
        (ProgramFilter(dialects=["shadertoy"], licence_classes=["permissive"]), ["shadertoy:tunnel1"]),
        (ProgramFilter(spdx=["mit"]), ["shadertoy:tunnel1"]),
        (ProgramFilter(licence_classes=["unknown"]), ["glslsandbox:sand.0"]),
        (ProgramFilter(tags=["tunnel"]), ["shadertoy:tunnel1"]),
        (ProgramFilter(tags=["tunnel", "plasma"]), []),
        (ProgramFilter(authors=["ann"]), ["shadertoy:tunnel1"]),
        (ProgramFilter(text="light"), ["shadertoy:tunnel1"]),
        (ProgramFilter(text="plasma"), ["shadertoy:copy", "shadertoy:plasma"]),
        (ProgramFilter(code="fbm("), ["shadertoy:tunnel1"]),
        (ProgramFilter(code='gl_FragColor=vec4("1'), []),
        (ProgramFilter(code="gl_FragColor"), ["glslsandbox:sand.0"]),
        (
            ProgramFilter(include_duplicates=False, sources=["shadertoy"]),
            ["shadertoy:plasma", "shadertoy:tunnel1"],
        ),
    ],
)
def test_each_filter_selects_what_it_says(filled, flt, expected):
    assert program_keys(filled, flt, limit=None) == expected
    assert count_programs(filled, flt) == len(expected)


def test_sort_and_limit(filled):
    flt = ProgramFilter(sources=["shadertoy"])
    assert program_keys(filled, flt, sort="created") == [
        "shadertoy:plasma",
        "shadertoy:copy",
        "shadertoy:tunnel1",
    ]
    assert program_keys(filled, flt, sort="-created", limit=1) == ["shadertoy:tunnel1"]
    with pytest.raises(UsageProblem, match="unknown sort"):
        program_keys(filled, flt, sort="sideways")


def test_show_gives_passes_licence_evidence_and_duplicates(filled):
    info = show_program(filled, "shadertoy:plasma")
    assert info["passes"] == [
        {
            "name": "Image",
            "type": "image",
            "code_sha256": info["passes"][0]["code_sha256"],
            "inputs": [],
            "code": GRADIENT,
        }
    ]
    assert info["licence"]["evidence"] == "site-default"
    assert info["duplicates"] == [{"program": "shadertoy:copy", "kind": "exact", "score": 1.0}]
    assert info["provenance"][0]["location"] == "test:1"
    with pytest.raises(NotFoundError, match="no program shadertoy:nope"):
        show_program(filled, "shadertoy:nope")
    with pytest.raises(UsageProblem, match="SOURCE:ID"):
        show_program(filled, "no-colon")


def test_stats_counts(filled):
    info = stats(filled)
    assert info["programs"] == 4
    assert info["by_source"] == {"shadertoy": 3, "glslsandbox": 1}
    assert info["duplicates"] == {"exact": 1}
    assert info["by_licence_class"]["noncommercial"] == 2
    assert info["by_validation_status"] == {"unvalidated": 4}


def test_code_search_follows_changed_code(filled):
    assert program_keys(filled, ProgramFilter(code="fbm(")) == ["shadertoy:tunnel1"]
    with filled.session() as s:
        changed = make_record("tunnel1", GRADIENT.replace("sin", "smoothstep(0.,1.,"))
        ProgramStore(filled).store([changed], s.connection())
    assert program_keys(filled, ProgramFilter(code="fbm(")) == []
    assert program_keys(filled, ProgramFilter(code="smoothstep(0.,1.,")) == ["shadertoy:tunnel1"]


def test_a_read_only_catalogue_answers_code_search_from_its_index_as_it_is(filled, request):
    from corpus.db import open_catalogue
    from corpus.queries import pending_code_index

    assert program_keys(filled, ProgramFilter(code="fbm(")) == ["shadertoy:tunnel1"]
    assert pending_code_index(filled) == 0
    with filled.session() as s:
        changed = make_record("tunnel1", GRADIENT.replace("sin", "smoothstep(0.,1.,"))
        ProgramStore(filled).store([changed], s.connection())
    assert pending_code_index(filled) == 1
    ro = open_catalogue(_read_only_url(filled, request))
    assert program_keys(ro, ProgramFilter(code="fbm(")) == ["shadertoy:tunnel1"]  # stale but answers
    assert pending_code_index(ro) == 1
    ro.close()
    assert program_keys(filled, ProgramFilter(code="fbm(")) == []


def _read_only_url(catalogue, request) -> str:
    """``--db`` for the same catalogue, read-only: SQLite's mode=ro, or a PostgreSQL user whose
    transactions are read-only."""
    if catalogue.dialect == "sqlite":
        return f"file:{catalogue.url.removeprefix('sqlite:///')}?mode=ro"
    from sqlalchemy.engine import make_url

    with catalogue.engine.begin() as conn:
        if not conn.exec_driver_sql("SELECT 1 FROM pg_roles WHERE rolname = 'reader'").first():
            conn.exec_driver_sql("CREATE ROLE reader LOGIN")
            conn.exec_driver_sql("ALTER ROLE reader SET default_transaction_read_only = on")
        conn.exec_driver_sql("GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader")
    return make_url(catalogue.url).set(username="reader").render_as_string(hide_password=False)


def test_the_sort_names_the_cli_offers_are_the_sorts_queries_know():
    from corpus.filters import SORT_NAMES
    from corpus.queries import SORTS

    assert tuple(SORTS) == SORT_NAMES


@pytest.fixture
def wildcards(catalogue):
    recs = [
        make_record("under", GRADIENT + "// a_b\n", title="a_b"),
        make_record("plain", GRADIENT + "// axb\n", title="axb"),
        make_record("percent", GRADIENT + "// 100%\n", title="100%"),
        make_record("digits", GRADIENT + "// 1000\n", title="1000"),
    ]
    recs[0].tags, recs[1].tags = ["a_b"], ["axb"]
    with catalogue.session() as s:
        ProgramStore(catalogue).store(recs, s.connection())
    return catalogue


def _selected(catalogue, flt: ProgramFilter, dialect: str) -> list[str]:
    """Programs ``flt`` selects with the SQL built for ``dialect`` (its LIKE paths run on SQLite too)."""
    from sqlalchemy import select

    from corpus.models import Licence, Program, Source
    from corpus.queries import apply_filter

    stmt = (
        select(Program.external_id)
        .join(Source, Source.id == Program.source_id)
        .outerjoin(Licence, Licence.program_id == Program.id)
        .order_by(Program.external_id)
    )
    with catalogue.session() as s:
        return list(s.execute(apply_filter(stmt, flt, dialect)).scalars())


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (ProgramFilter(text="_"), ["under"]),
        (ProgramFilter(text="a_b"), ["under"]),
        (ProgramFilter(text="%"), ["percent"]),
        (ProgramFilter(text="0%"), ["percent"]),
        (ProgramFilter(tags=["a_b"]), ["under"]),
    ],
)
def test_underscore_and_percent_are_literal_in_searches(wildcards, flt, expected, dialect):
    if wildcards.dialect != "sqlite" and dialect != wildcards.dialect:
        pytest.skip("the SQL built for SQLite runs on SQLite (which runs PostgreSQL's LIKE paths too)")
    assert _selected(wildcards, flt, dialect) == expected


@pytest.mark.parametrize("walk", [1, 2000])
def test_underscore_and_percent_are_literal_in_the_code_search(wildcards, walk, monkeypatch):
    monkeypatch.setattr("corpus.pg_listing.WALK_PROGRAMS", walk)  # PostgreSQL: walked, or the index
    assert program_keys(wildcards, ProgramFilter(code="a_b")) == ["shadertoy:under"]
    assert program_keys(wildcards, ProgramFilter(code="0%\n")) == ["shadertoy:percent"]
    assert count_programs(wildcards, ProgramFilter(code="a_b")) == 1


def test_code_search_ignores_case_on_both_backends(filled):
    assert program_keys(filled, ProgramFilter(code="FBM(")) == ["shadertoy:tunnel1"]
    assert program_keys(filled, ProgramFilter(code="GL_FRAGCOLOR")) == ["glslsandbox:sand.0"]


@pytest.fixture
def many_sources(catalogue):
    """Five programs in two sources; the code of two of them holds ``needle`` (in key order:
    glslsandbox:g1 before shadertoy:s1 … s4)."""
    recs = [make_record(f"s{i}", GRADIENT + f"// program {i}\n") for i in range(1, 5)]
    recs.append(make_record("g1", GRADIENT + "// needle\n", source="glslsandbox"))
    recs[3].passes[0].code += "float needle;\n"
    with catalogue.session() as s:
        ProgramStore(catalogue).store(recs, s.connection())
    return catalogue


@pytest.mark.parametrize("walk", [1, 2, 3, 1000])
def test_listing_limits_and_code_search_keep_key_order_across_sources(many_sources, walk, monkeypatch):
    # on PostgreSQL the first WALK_PROGRAMS programs of each source are tested one by one, the
    # trigram index answers when they hold too few matches: every size gives the same answer
    monkeypatch.setattr("corpus.pg_listing.WALK_PROGRAMS", walk)
    assert program_keys(many_sources, limit=3) == ["glslsandbox:g1", "shadertoy:s1", "shadertoy:s2"]
    assert program_keys(many_sources, ProgramFilter(code="needle"), limit=1) == ["glslsandbox:g1"]
    assert program_keys(many_sources, ProgramFilter(code="needle"), limit=5) == [
        "glslsandbox:g1",
        "shadertoy:s4",
    ]
    assert program_keys(many_sources, ProgramFilter(code="nowhere")) == []
    flt = ProgramFilter(code="program", sources=["shadertoy"])
    assert program_keys(many_sources, flt, limit=2) == ["shadertoy:s1", "shadertoy:s2"]


def _postgres_plan(catalogue, flt: ProgramFilter) -> str:
    """PostgreSQL's plan for ``corpus ls``'s statement with the planner told to avoid reading a
    whole table or index: an index that can answer ``flt`` shows up in it (at this size a scan
    would win)."""
    from sqlalchemy import select

    from corpus.models import Licence, Program, Source
    from corpus.queries import apply_filter

    stmt = apply_filter(
        select(Program.id)
        .join(Source, Source.id == Program.source_id)
        .outerjoin(Licence, Licence.program_id == Program.id),
        flt,
        "postgresql",
    )
    with catalogue.engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        conn.exec_driver_sql("SET LOCAL enable_indexscan = off")  # nor a whole index in order
        compiled = stmt.compile(conn, compile_kwargs={"render_postcompile": True})
        return "\n".join(conn.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params).scalars())


@pytest.mark.parametrize(
    ("flt", "index"),
    [
        (ProgramFilter(code="fbm("), "ix_program_code_trgm"),
        (ProgramFilter(text="tunnel"), "ix_program_title_trgm"),
        (ProgramFilter(tags=["neon"]), "ix_program_tags_trgm"),
        (ProgramFilter(spdx=["mit"]), "ix_licence_spdx_lower"),
        (ProgramFilter(authors=["ann"]), "ix_program_author_key"),
        (ProgramFilter(licence_classes=["permissive"]), "ix_licence_class"),
    ],
)
@on_postgresql
def test_postgresql_answers_code_search_and_filters_from_indexes(filled, flt, index):
    plan = _postgres_plan(filled, flt)
    assert index in plan, plan


@on_postgresql
def test_processes_refreshing_the_code_index_at_once_share_the_queue(filled):
    from sqlalchemy import text

    from corpus.queries import pending_code_index, refresh_code_index

    assert refresh_code_index(filled) == 4
    store_more = [make_record(f"more{i}", GRADIENT + f"// more {i}\n") for i in range(3)]
    with filled.session() as s:
        ProgramStore(filled).store(store_more, s.connection())
    assert pending_code_index(filled) == 3
    with filled.engine.connect() as other:  # another process, halfway through a chunk
        other.execute(
            text("SELECT program_id FROM code_search_pending ORDER BY program_id LIMIT 1 FOR UPDATE")
        )
        assert refresh_code_index(filled) == 2  # the locked one is left to it, not waited for
        assert pending_code_index(filled) == 1
        other.rollback()
    assert refresh_code_index(filled) == 1
    assert program_keys(filled, ProgramFilter(code="// more")) == [f"shadertoy:more{i}" for i in range(3)]


@on_postgresql
def test_a_postgresql_listing_walks_without_parallel_workers_in_its_own_transaction_only(filled):
    from sqlalchemy import event

    seen = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(filled.engine, "before_cursor_execute", keep)
    try:
        assert program_keys(filled, ProgramFilter(tags=["neon"]), limit=10) == ["shadertoy:tunnel1"]
    finally:
        event.remove(filled.engine, "before_cursor_execute", keep)
    assert seen[0] == "SET LOCAL max_parallel_workers_per_gather = 0"
    with filled.engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW max_parallel_workers_per_gather").scalar() != "0"


def test_a_count_within_a_time_budget_is_exact_or_the_planners_estimate_and_says_which(filled, catalogue):
    """corpus ls's "showing 100 of N" must not cost ten times the listing (1 s against 22 ms at a
    million programs on PostgreSQL): past its budget the count is the planner's estimate."""
    from corpus.queries import count_programs_within

    flt = ProgramFilter(sources=["shadertoy"])
    assert count_programs_within(filled, flt, 5.0) == (count_programs(filled, flt), True)
    total, exact = count_programs_within(filled, flt, 0.0)  # no time at all: an estimate
    if catalogue.dialect == "postgresql":
        assert exact is False and total >= 1
        # every kind of filter plans (LIKE patterns with their escapes, IN lists, code search)
        many = ProgramFilter(
            sources=["shadertoy"], tags=["tunnel"], text="li_ght%", code="fbm(", spdx=["mit"]
        )
        assert count_programs_within(filled, many, 0.0)[1] is False
    else:  # SQLite counts exactly, always
        assert (total, exact) == (count_programs(filled, flt), True)


def test_a_count_over_its_budget_is_cancelled_by_the_server_and_estimated(filled, catalogue, monkeypatch):
    if catalogue.dialect != "postgresql":
        pytest.skip("SQLite counts exactly, with no budget")
    from sqlalchemy import func, select

    import corpus.queries
    from corpus.queries import count_programs_within

    slow = select(func.count()).select_from(select(func.pg_sleep(0.5)).subquery())
    monkeypatch.setattr(corpus.queries, "_count_statement", lambda catalogue, flt, what=None: slow)
    started = time.perf_counter()
    assert count_programs_within(filled, ProgramFilter(), 0.02) == (1, False)
    assert time.perf_counter() - started < 0.45  # cancelled, not waited for
