"""One author key (NFKC, casefolded, stripped) compared everywhere: takedowns, --author, snapshots."""

from __future__ import annotations

import importlib

import pytest
from sqlalchemy import select, text

from corpus import db as dbmod
from corpus.exclusions import add_exclusion
from corpus.models import Exclusion, Program
from corpus.queries import ProgramFilter, show_program
from corpus.records import author_key
from corpus.snapshots import create_snapshot
from corpus.store import ProgramStore
from tests.conftest import GRADIENT, make_record
from tests.corpus.helpers import MIT, program_keys, store

pytestmark = pytest.mark.both_backends


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("émile", "Émile"),
        ("STRASSE", "straße"),
        ("Ｅｍｉｌｅ", "emile"),  # full-width letters (NFKC)
        ("e\u0301mile", "émile"),  # a combining accent and a precomposed letter
        ("  Ann  ", "ann"),
    ],
)
def test_author_key_makes_spellings_of_one_name_equal(one: str, other: str) -> None:
    assert author_key(one) == author_key(other)


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_author_key_of_no_author_is_none(blank: str | None) -> None:
    assert author_key(blank) is None


@pytest.fixture
def authors(catalogue):
    store(
        catalogue,
        [
            make_record("by_emile", MIT + GRADIENT, author="Émile"),
            make_record("by_strasse", MIT + GRADIENT.replace("sin", "cos"), author="STRASSE"),
            make_record("by_ann", MIT + GRADIENT.replace("sin", "tan"), author="ann"),
        ],
    )
    return catalogue


def test_author_filter_matches_non_ascii_case_and_folding(authors) -> None:
    assert program_keys(authors, ProgramFilter(authors=["émile"])) == ["shadertoy:by_emile"]
    assert program_keys(authors, ProgramFilter(authors=["straße"])) == ["shadertoy:by_strasse"]


def test_an_author_takedown_hides_every_spelling_from_listings_show_and_snapshots(authors) -> None:
    add_exclusion(authors, author="émile", reason="asked by mail")
    add_exclusion(authors, author="straße", reason="asked by mail")
    hidden = ProgramFilter(include_excluded=False)
    assert program_keys(authors, hidden) == ["shadertoy:by_ann"]
    assert show_program(authors, "shadertoy:by_emile")["excluded"] == "asked by mail"
    assert show_program(authors, "shadertoy:by_strasse")["excluded"] == "asked by mail"
    summary = create_snapshot(authors, "s1")
    assert summary.entries == 1


def test_an_author_takedown_counts_and_deduplicates_by_key(authors) -> None:
    first = add_exclusion(authors, author="ÉMILE", reason="asked")
    assert first["programs_in_catalogue"] == 1 and not first["already_excluded"]
    again = add_exclusion(authors, author="émile ", reason="asked twice")
    assert again["already_excluded"]


def test_an_import_skips_every_spelling_of_an_excluded_author(catalogue) -> None:
    add_exclusion(catalogue, author="émile", reason="asked")
    add_exclusion(catalogue, author="straße", reason="asked")
    with catalogue.session() as s:
        result = ProgramStore(catalogue).store(
            [
                make_record("x1", author="ÉMILE"),
                make_record("x2", GRADIENT + "//2\n", author="Strasse"),
                make_record("x3", GRADIENT + "//3\n", author="ann"),
            ],
            s.connection(),
        )
    assert (result.added, result.excluded) == (1, 2)


def test_a_new_author_spelling_updates_the_stored_key(authors) -> None:
    store(authors, [make_record("by_ann", MIT + GRADIENT.replace("sin", "tan"), author="Ånn")])
    assert program_keys(authors, ProgramFilter(authors=["åNN"])) == ["shadertoy:by_ann"]


def test_migration_0005_backfills_author_keys_across_batches(tmp_path) -> None:
    batch = importlib.import_module("migrations.versions.0005_author_key_licence_class").BATCH
    names = ["Émile", "STRASSE", None, "ann"] + ["filler"] * batch  # more than one batch
    cat = dbmod.connect(str(tmp_path / "cat.db"), must_exist=False)
    dbmod.upgrade(cat, "0004_frontier_claim_order")
    with cat.engine.begin() as conn:
        conn.execute(text("INSERT INTO source (id, name) VALUES (1, 'shadertoy')"))
        conn.execute(
            text(
                "INSERT INTO program (source_id, external_id, author, first_seen, last_seen, dialect,"
                " code_sha256, norm_sha256) VALUES (1, :ext, :author, '2026-01-01', '2026-01-01',"
                " 'shadertoy', 'c', 'n')"
            ),
            [{"ext": f"p{i}", "author": name} for i, name in enumerate(names)],
        )
        conn.execute(
            text("INSERT INTO exclusion (author, reason, created_at) VALUES ('ÉMILE', 'asked', '2026-01-01')")
        )
    dbmod.upgrade(cat)
    with cat.engine.connect() as conn:
        keys = dict(conn.execute(select(Program.external_id, Program.author_key)).all())
        assert [keys[f"p{i}"] for i in range(4)] == ["émile", "strasse", None, "ann"]
        assert keys[f"p{len(names) - 1}"] == "filler"  # the last row, in the second batch
        assert conn.execute(select(Exclusion.author_key)).scalar_one() == "émile"
    catalogue = dbmod.open_catalogue(str(tmp_path / "cat.db"))
    assert "shadertoy:p0" not in program_keys(catalogue, ProgramFilter(include_excluded=False))
    dbmod.downgrade(cat, "0004_frontier_claim_order")
    dbmod.upgrade(cat)
