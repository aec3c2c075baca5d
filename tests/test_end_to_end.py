"""The README's main job, through the real command lines, on the bundled examples."""

from __future__ import annotations

import json

import pytest

import corpus.cli
import harvest.cli
from corpus.cliutils import run_app
from corpus.sources import source_info
from tests.conftest import EXAMPLES, SHARED_SAMPLES, needs_samples

DUMPS = ["shaders21k", "shadertoys.jsonl", "glslsandbox.jsonl", "gl-transitions.json", "repo"]
EXPECTED = json.loads((EXAMPLES / "expected.json").read_text())


def cli(app, name, args, capsys) -> str:
    code = run_app(app, name, args)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


@pytest.fixture
def imported(tmp_path, capsys):
    db = str(tmp_path / "cat.db")
    out = cli(
        harvest.cli.app,
        "harvest",
        ["import", *[str(EXAMPLES / d) for d in DUMPS], "--db", db, "--json"],
        capsys,
    )
    reports = [json.loads(line) for line in out.splitlines()]
    assert [r["bad"] for r in reports] == [0] * len(DUMPS)
    cli(corpus.cli.app, "corpus", ["dedup", "--db", db], capsys)
    return db


def ls(db, capsys, *args) -> dict[str, dict]:
    out = cli(corpus.cli.app, "corpus", ["ls", "--db", db, "--limit", "0", "--json", *args], capsys)
    rows = [json.loads(line) for line in out.splitlines()]
    return {f"{r['source']}:{r['external_id']}": r for r in rows}


def test_every_example_lands_with_the_licence_its_code_states(imported, capsys):
    rows = ls(imported, capsys)
    assert set(rows) == set(EXPECTED)
    for name, exp in EXPECTED.items():
        row = rows[name]
        assert row["dialect"] == exp["dialect"], name
        if exp["licence_spdx"] is not None:
            assert row["licence_spdx"] == exp["licence_spdx"], name
            assert row["licence_evidence"] in ("code-comment", "spdx-line"), name
        elif name.startswith("dir:"):
            assert (row["licence_spdx"], row["licence_evidence"]) == ("MIT", "repo-licence-file"), name
        else:
            default = source_info(row["source"]).default_licence or "NOASSERTION"
            assert row["licence_spdx"] == default, name
            assert row["licence_evidence"] in ("site-default", "dump-field", "none"), name


def test_the_planted_duplicates_are_found_and_nothing_else(imported, capsys):
    rows = ls(imported, capsys)
    found = {k: (r["duplicate_of"], r["duplicate_kind"]) for k, r in rows.items() if r["duplicate_of"]}
    planted = {k: (e["duplicate_of"], e["duplicate_kind"]) for k, e in EXPECTED.items() if e["duplicate_of"]}
    assert found == planted


def test_snapshot_export_verify_and_show_through_the_cli(imported, tmp_path, capsys):
    summary = json.loads(
        cli(corpus.cli.app, "corpus", ["snapshot", "create", "s1", "--db", imported, "--json"], capsys)
    )
    classes = {
        r["licence_class"] for r in ls(imported, capsys, "--unique", "--licence", "permissive").values()
    }
    assert classes == {"permissive"}
    expected_n = len(
        ls(imported, capsys, "--unique", "--licence", "permissive", "--licence", "public-domain")
    )
    assert summary["entries"] == expected_n
    out = tmp_path / "export"
    cli(corpus.cli.app, "corpus", ["snapshot", "export", "s1", str(out), "--db", imported], capsys)
    report = json.loads(cli(corpus.cli.app, "corpus", ["snapshot", "verify", str(out), "--json"], capsys))
    assert report["ok"] and report["entries"] == expected_n
    info = json.loads(
        cli(corpus.cli.app, "corpus", ["show", "shadertoy:ipEx04", "--db", imported, "--json"], capsys)
    )
    assert [p["name"] for p in info["passes"]] == ["Common", "Buffer A", "Image"]
    assert info["passes"][1]["inputs"][0] == {
        "channel": 0,
        "kind": "buffer",
        "ref": "Buffer A",
        "sampler": info["passes"][1]["inputs"][0]["sampler"],
    }
    assert all("code" in p for p in info["passes"])


def test_ls_csv_and_table_outputs(imported, capsys):
    out = cli(
        corpus.cli.app, "corpus", ["ls", "--db", imported, "--csv", "--source", "gl-transitions"], capsys
    )
    lines = out.strip().splitlines()
    assert lines[0].startswith("program,source,external_id,title")
    assert lines[1].startswith("gl-transitions:")
    assert len(lines) == 1 + sum(name.startswith("gl-transitions:") for name in EXPECTED)  # and a header
    table = cli(corpus.cli.app, "corpus", ["ls", "--db", imported, "--limit", "3"], capsys)
    assert "program" in table.splitlines()[0] and len(table.strip().splitlines()) == 4


def test_takedown_keeps_a_program_out_of_snapshots(imported, capsys):
    cli(
        corpus.cli.app,
        "corpus",
        ["exclude", "shadertoy:ipEx01", "--reason", "author asked", "--db", imported],
        capsys,
    )
    rows = json.loads(cli(corpus.cli.app, "corpus", ["exclusions", "--db", imported, "--json"], capsys))
    assert rows["program"] == "shadertoy:ipEx01"
    cli(corpus.cli.app, "corpus", ["snapshot", "create", "s2", "--db", imported], capsys)
    shown = json.loads(
        cli(
            corpus.cli.app,
            "corpus",
            ["snapshot", "show", "s2", "--programs", "--db", imported, "--json"],
            capsys,
        )
    )
    assert "shadertoy:ipEx01" not in {p["program"] for p in shown["programs"]}


@needs_samples
def test_the_shared_samples_import_cleanly(tmp_path, capsys):
    db = str(tmp_path / "samples.db")
    paths = [SHARED_SAMPLES / "shadertoy-api" / "2024-07.jsonl", SHARED_SAMPLES / "shadertoys-dataset"]
    paths += sorted((SHARED_SAMPLES / "shadertoy-site" / "shaders").glob("*.json"))
    args = [
        "import",
        str(paths[0]),
        str(paths[1] / "20k_2014-02.jsonl"),
        *map(str, paths[2:]),
        "--db",
        db,
        "--json",
    ]
    reports = [json.loads(x) for x in cli(harvest.cli.app, "harvest", args, capsys).splitlines()]
    assert sum(r["bad"] for r in reports) == 0
    assert sum(r["added"] for r in reports) == 100 + 11 + len(paths) - 2
    stats = json.loads(cli(corpus.cli.app, "corpus", ["stats", "--db", db, "--json"], capsys))
    assert stats["by_source"] == {"shadertoy": stats["programs"]}
    assert (
        stats["by_licence_evidence"].get("site-default", 0)
        + stats["by_licence_evidence"].get("dump-field", 0)
        > 50
    )


def test_licence_audit_rechecks_the_stored_code(imported, capsys):
    out = cli(corpus.cli.app, "corpus", ["licence", "shadertoy:ipEx04", "--db", imported, "--json"], capsys)
    audit = json.loads(out)
    assert audit["stored"]["spdx"] == "CC-BY-4.0"
    assert [r["spdx"] for r in audit["found_in_code"]] == ["CC-BY-4.0"]
    code = run_app(
        corpus.cli.app, "corpus", ["licence", "shadertoy:ipEx04", "--engine", "scancode", "--db", imported]
    )
    err = capsys.readouterr().err
    try:
        import licensedcode  # noqa: F401
    except ImportError:
        assert code == 1 and "ScanCode is not installed" in err and "imageprograms[scancode]" in err
