"""The corpus command line: what a user types and what comes back (exit codes, errors, output)."""

from __future__ import annotations

import ast
import json

import pytest

import corpus.cli
from corpus.cli_options import STATUS_NAMES, program_filter
from corpus.cliutils import run_app
from corpus.errors import UsageProblem
from corpus.records import DIALECTS
from corpus.sources import SOURCES
from corpus.store import ProgramStore
from tests.conftest import GRADIENT, ROOT, make_record

MIT = "// SPDX-License-Identifier: MIT\n"


def corpus_cli(args: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run_app(corpus.cli.app, "corpus", args)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def db(catalogue) -> str:
    records = [
        make_record("plain", MIT + GRADIENT, title="Plain", author="ann"),
        make_record("marked", MIT + GRADIENT.replace("sin", "cos"), title="[bold]x[/bold]", author="[red"),
    ]
    with catalogue.session() as s:
        ProgramStore(catalogue).store(records, s.connection())
    return str(catalogue.url).removeprefix("sqlite:///")


@pytest.mark.parametrize(
    ("option", "value", "known"),
    [
        ("--source", "shadertoi", SOURCES),
        ("--dialect", "shaderto", DIALECTS),
        ("--status", "okay", STATUS_NAMES),
    ],
)
def test_an_unknown_filter_value_is_a_usage_error_listing_the_known_ones(db, capsys, option, value, known):
    for command in (["ls"], ["snapshot", "create", "s1"]):
        code, out, err = corpus_cli([*command, "--db", db, option, value], capsys)
        assert code == 2 and out == ""
        lines = err.splitlines()
        assert lines[0] == f"error: unknown {option[2:]} {value!r}"
        assert lines[1] == f"hint: use one of: {', '.join(known)}"


def test_known_filter_values_pass_through_to_the_filter():
    flt = program_filter(["shadertoy"], ["glslsandbox"], ["permissive"], [], [], [], None, None, True, ["ok"])
    assert (flt.sources, flt.dialects, flt.licence_classes, flt.statuses) == (
        ["shadertoy"],
        ["glslsandbox"],
        ["permissive"],
        ["ok"],
    )
    with pytest.raises(UsageProblem, match="unknown licence class 'free'"):
        program_filter([], [], ["free"], [], [], [], None, None, True)


def test_no_package_imports_a_private_name_of_corpus():
    offenders = []
    for path in [*ROOT.joinpath("render").rglob("*.py"), *ROOT.joinpath("harvest").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("corpus"):
                offenders += [f"{path.name}: {a.name}" for a in node.names if a.name.startswith("_")]
    assert offenders == []


def _ls(db: str, capsys, *args: str) -> list[str]:
    code, out, _ = corpus_cli(["ls", "--db", db, "--json", *args], capsys)
    assert code == 0
    return [json.loads(line)["program"] for line in out.splitlines()]


def test_ls_hides_takedowns_lists_them_with_excluded_and_rm_undoes_one(db, capsys):
    assert _ls(db, capsys) == ["shadertoy:marked", "shadertoy:plain"]
    assert corpus_cli(["exclude", "--author", "ANN", "--reason", "asked", "--db", db], capsys)[0] == 0
    assert corpus_cli(["exclude", "shadertoy:marked", "--reason", "typo", "--db", db], capsys)[0] == 0
    assert _ls(db, capsys) == []
    assert _ls(db, capsys, "--excluded") == ["shadertoy:marked", "shadertoy:plain"]
    code, out, _ = corpus_cli(["exclusions", "rm", "shadertoy:marked", "--db", db], capsys)
    assert code == 0 and out.strip() == "removed the takedown of shadertoy:marked (typo)"
    code, out, _ = corpus_cli(["exclusions", "rm", "--author", "ann", "--db", db, "--json"], capsys)
    assert code == 0 and json.loads(out)["author"] == "ANN" and json.loads(out)["programs_in_catalogue"] == 1
    assert _ls(db, capsys) == ["shadertoy:marked", "shadertoy:plain"]
    assert _ls(db, capsys, "--excluded") == []
    assert json.loads(corpus_cli(["exclusions", "--db", db, "--json"], capsys)[1] or "null") is None


def test_removing_a_takedown_that_does_not_exist_says_how_to_list_them(db, capsys):
    code, _, err = corpus_cli(["exclusions", "rm", "shadertoy:nope", "--db", db], capsys)
    assert (code, err.splitlines()) == (
        5,
        ["error: no takedown of shadertoy:nope", "hint: list them with: corpus exclusions"],
    )
    on_shadertoy = ["--author", "ann", "--source", "shadertoy", "--db", db]
    corpus_cli(["exclude", *on_shadertoy, "--reason", "asked"], capsys)
    code, _, err = corpus_cli(["exclusions", "rm", "--author", "ann", "--db", db], capsys)
    assert code == 5  # the takedown was given on one source: named without it, it is another one
    assert corpus_cli(["exclusions", "rm", *on_shadertoy], capsys)[0] == 0


def test_table_cells_show_brackets_as_written_not_as_markup(db, capsys):
    code, out, _ = corpus_cli(["ls", "--db", db], capsys)
    assert code == 0
    marked = next(line for line in out.splitlines() if line.startswith("shadertoy:marked"))
    assert "[bold]x[/bold]" in marked and "[red" in marked
