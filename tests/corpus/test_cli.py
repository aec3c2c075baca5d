"""The corpus command line: what a user types and what comes back (exit codes, errors, output)."""

from __future__ import annotations

import ast
import json
import os
import re

import pytest

import corpus.cli
from corpus.cli_options import STATUS_NAMES, program_filter
from corpus.cliutils import run_app
from corpus.errors import UsageProblem
from corpus.records import DIALECTS
from corpus.sources import SOURCES
from corpus.store import ProgramStore
from tests.conftest import GRADIENT, ROOT, make_record
from tests.corpus.helpers import MIT, db_path

pytestmark = pytest.mark.both_backends


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
    return db_path(catalogue)


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
    corpus_cli(
        ["exclude", "--author", "ÉMILE", "--source", "shadertoy", "--reason", "asked", "--db", db], capsys
    )
    code, out, _ = corpus_cli(
        ["exclusions", "rm", "--author", "émile", "--source", "shadertoy", "--db", db], capsys
    )
    assert code == 0 and out.strip() == "removed the takedown of author ÉMILE on shadertoy (asked)"
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


def _validate(db: str, program: str, status: str, log: str | None) -> None:
    from corpus.db import open_catalogue
    from corpus.validations import load_program, record_validations

    catalogue = open_catalogue(db)
    item = load_program(catalogue, program)
    record_validations(
        catalogue,
        [
            {"code_sha256": item["code_sha256"], "dialect": item["dialect"], "renderer": "llvmpipe test"}
            | {"status": status, "log": log}
        ],
    )


def test_show_gives_the_compile_log_of_a_failed_validation_in_text_and_json(db, capsys):
    code, out, _ = corpus_cli(["show", "shadertoy:plain", "--db", db], capsys)
    assert "  validated  not yet (render validate)" in out.splitlines()
    log = "0:3(5): error: `fragColour' undeclared\n0:3(5): error: type mismatch"
    _validate(db, "shadertoy:plain", "compile_error", log)
    code, out, _ = corpus_cli(["show", "shadertoy:plain", "--db", db], capsys)
    lines = out.splitlines()
    at = next(
        i for i, line in enumerate(lines) if line.startswith("  validated  compile_error on llvmpipe test")
    )
    assert lines[at + 1 : at + 3] == [
        "  log        0:3(5): error: `fragColour' undeclared",
        "             0:3(5): error: type mismatch",
    ]
    shown = json.loads(corpus_cli(["show", "shadertoy:plain", "--db", db, "--json"], capsys)[1])
    assert (shown["validation"]["status"], shown["validation"]["log"]) == ("compile_error", log)
    _validate(db, "shadertoy:marked", "ok", "a warning nobody needs")
    code, out, _ = corpus_cli(["show", "shadertoy:marked", "--db", db], capsys)
    assert "a warning nobody needs" not in out and "  validated  ok on llvmpipe test" in out


def test_show_cuts_a_long_log_and_says_where_the_rest_is(db, capsys):
    _validate(db, "shadertoy:plain", "link_error", "\n".join(f"error {i}" for i in range(45)))
    out = corpus_cli(["show", "shadertoy:plain", "--db", db], capsys)[1]
    assert "error 29" in out and "error 30" not in out
    assert "(15 more lines: corpus show --json has them all)" in out


@pytest.mark.parametrize("under", ["afile/x", "afile/deeper/x"])
def test_exporting_under_a_file_is_one_clear_error(db, capsys, tmp_path, under):
    (tmp_path / "afile").write_text("mine")
    assert corpus_cli(["snapshot", "create", "s", "--db", db], capsys)[0] == 0
    code, out, err = corpus_cli(["snapshot", "export", "s", str(tmp_path / under), "--db", db], capsys)
    assert (code, out) == (6, "")
    assert err.splitlines() == [
        f"error: cannot export into {tmp_path / under}: {tmp_path / 'afile'} is a file, not a folder",
        "hint: export into a folder whose parents are folders (or do not exist yet)",
    ]
    assert (tmp_path / "afile").read_text() == "mine"


@pytest.mark.parametrize(
    ("given", "passed"), [([], os.cpu_count() or 1), (["--workers", "0"], 0), (["--workers", "3"], 3)]
)
def test_dedup_workers_unset_is_one_per_core_zero_is_in_process(db, capsys, monkeypatch, given, passed):
    import corpus.near_duplicates

    seen = []

    def fake(catalogue, *, threshold, workers, progress):
        seen.append(workers)
        return {"programs": 0, "near_duplicates": 0, "threshold": threshold}

    monkeypatch.setattr(corpus.near_duplicates, "mark_near_duplicates", fake)
    assert corpus_cli(["dedup", "--db", db, *given], capsys)[0] == 0
    assert seen == [passed]
    boxed = corpus_cli(["dedup", "--help"], capsys)[1]
    help_text = " ".join(re.sub("[│╭╮╰╯─]", " ", boxed).split())
    assert "Default: one per core; 0: in this process." in help_text


ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def test_ls_sorted_by_seen_shows_when_each_program_was_last_seen_in_iso_utc(db, capsys):
    code, out, _ = corpus_cli(["ls", "--db", db, "--sort", "seen"], capsys)
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split()[-1] == "last_seen"
    assert len(rows) == 2 and all(ISO_Z.match(row.split()[-1]) for row in rows)
    code, out, _ = corpus_cli(["ls", "--db", db, "--json"], capsys)
    assert all(ISO_Z.match(json.loads(line)["last_seen"]) for line in out.splitlines())


def test_ls_cut_by_its_limit_says_how_many_it_left_out(db, capsys, monkeypatch):
    """The footnote counts within a time budget, else estimates and says so (corpus.cli)."""
    import corpus.queries

    code, _, err = corpus_cli(["ls", "--db", db, "--limit", "1"], capsys)
    assert code == 0 and "showing 1 of 2; --limit 0 shows all" in err
    monkeypatch.setattr(corpus.queries, "count_programs_within", lambda catalogue, flt, seconds: (2, False))
    code, _, err = corpus_cli(["ls", "--db", db, "--limit", "1"], capsys)
    assert code == 0 and "showing 1 of about 2 (estimated" in err


def test_times_a_command_prints_from_the_catalogue_are_iso_utc_with_z(db, capsys):
    from datetime import datetime, timedelta, timezone

    from corpus.cliutils import emit_json, emit_rows

    naive, paris = (
        datetime(2024, 5, 1, 12, 0, 0),
        datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),
    )
    emit_json({"at": naive, "other": paris})
    assert json.loads(capsys.readouterr().out) == {
        "at": "2024-05-01T12:00:00Z",
        "other": "2024-05-01T12:00:00Z",
    }
    emit_rows([{"at": naive}], ["at"], "csv")
    assert capsys.readouterr().out.splitlines() == ["at", "2024-05-01T12:00:00Z"]
