"""harvest import into a real catalogue: idempotence, resuming after a kill, bad input, full disk."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select

from corpus.cliutils import run_app
from corpus.db import open_catalogue
from corpus.errors import CatalogueError, InputFormatError, UsageProblem
from corpus.models import ImportRun, Program
from harvest.cli import app as harvest_app
from harvest.importing import import_path
from tests.conftest import ROOT, catalogue_rows, wait_for_count
from tests.harvest.helpers import dies_after


def shader(i: int) -> str:
    return (
        "void mainImage(out vec4 fragColor, in vec2 fragCoord) {\n"
        f"    vec2 uv = fragCoord / iResolution.xy * {i % 97 + 1}.0;\n"
        f"    fragColor = vec4(fract(uv + {i}.0 * 0.013), sin(iTime * {i % 13 + 1}.0), 1.0);\n"
        "}\n"
    )


def flat(i: int, **over) -> dict:
    rec = {
        "id": f"t{i:06d}",
        "name": f"test shader {i}",
        "author": f"author{i % 7}",
        "description": "",
        "tags": ["test"],
        "date": str(1_500_000_000 + i),
        "image_code": shader(i),
        "image_inputs": [],
        "common_code": "",
        "buffer_a_code": "",
        "buffer_a_inputs": [],
        "license": "CC-BY-NC-SA-3.0",
    }
    rec.update(over)
    return rec


def write_jsonl(path: Path, records: list) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return path


def program_ids(catalogue) -> list[str]:
    with catalogue.session() as s:
        return sorted(s.execute(select(Program.external_id)).scalars())


def test_a_second_import_of_the_same_file_changes_nothing(catalogue, tmp_path):
    dump = write_jsonl(tmp_path / "d.jsonl", [flat(i) for i in range(30)])
    first = import_path(catalogue, dump, batch_size=7)
    assert (first.added, first.bad_count) == (30, 0)
    before = catalogue_rows(catalogue)
    skipped = import_path(catalogue, dump)
    assert skipped.already_imported and skipped.added == 0
    again = import_path(catalogue, dump, again=True)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 30)
    assert catalogue_rows(catalogue) == before


def test_bad_records_are_reported_with_file_and_line_and_skipped(catalogue, tmp_path):
    lines = [
        flat(0),
        "{not json",
        flat(2, id=None),
        flat(3, image_code=""),
        flat(4, image_code="x" * (5 * 1024 * 1024)),
        flat(5),
        flat(5, image_code=shader(55)),  # the same id again: the later one wins, both codes kept
    ]
    dump = write_jsonl(tmp_path / "bad.jsonl", lines)
    with open(dump, "ab") as f:
        f.write(b'{"id": "t000009", "name": "\xff\xfe broken bytes", "image_code": "void main(){}"}\n')
    report = import_path(catalogue, dump)
    assert report.bad_count == 5
    locations = [b.location for b in report.bad]
    assert locations == [f"{dump}:{n}" for n in (2, 3, 4, 5, 8)]
    assert "too large" in report.bad[3].reason
    assert program_ids(catalogue) == ["t000000", "t000005"]
    assert (report.added, report.updated) == (2, 1)


def test_strict_stops_at_the_first_bad_record_keeping_what_came_before(catalogue, tmp_path):
    dump = write_jsonl(tmp_path / "bad.jsonl", [flat(0), flat(1), "{oops", flat(3)])
    with pytest.raises(InputFormatError, match=r"bad\.jsonl:3"):
        import_path(catalogue, dump, strict=True)
    assert program_ids(catalogue) == ["t000000", "t000001"]


def test_an_interrupted_import_resumes_after_the_last_committed_batch(catalogue, tmp_path, monkeypatch):
    dump = write_jsonl(tmp_path / "d.jsonl", [flat(i) for i in range(50)])
    import harvest.importing as importing

    real = importing.read_records
    monkeypatch.setattr(importing, "read_records", dies_after(23, real))
    with pytest.raises(KeyboardInterrupt):
        import_path(catalogue, dump, batch_size=10)
    assert len(program_ids(catalogue)) == 20
    monkeypatch.setattr(importing, "read_records", real)
    report = import_path(catalogue, dump, batch_size=10)
    assert report.resumed_from == 20
    assert report.added == 30
    assert program_ids(catalogue) == [f"t{i:06d}" for i in range(50)]


@pytest.mark.parametrize("name", ["big.jsonl", "big.jsonl.gz"])
def test_a_sigkilled_import_process_resumes_without_loss_or_repeats(tmp_path, name):
    import gzip

    dump = write_jsonl(tmp_path / "big.jsonl", [flat(i) for i in range(6000)])
    if name.endswith(".gz"):  # the checkpoint holds through decompression
        dump = dump.rename(tmp_path / name)
        dump.write_bytes(gzip.compress(dump.read_bytes()))
    db = tmp_path / "cat.db"
    cmd = [sys.executable, "-m", "harvest.cli", "import", str(dump), "--db", str(db), "--batch-size", "100"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    done = wait_for_count(db, "SELECT coalesce(max(items_done), 0) FROM import_run", 500)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 0 < done < 6000, "the import finished before it could be killed; make the input bigger"
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    committed = con.execute("SELECT items_done FROM import_run").fetchone()[0]
    assert con.execute("SELECT count(*) FROM program").fetchone()[0] == committed
    con.close()
    out = subprocess.run([*cmd, "--json"], cwd=ROOT, capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    assert report["resumed_from"] == committed
    assert report["added"] == 6000 - committed
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*), count(DISTINCT external_id) FROM program").fetchone() == (6000, 6000)


def test_a_disk_that_fills_up_mid_import_loses_nothing_committed(tmp_path):
    """RLIMIT_FSIZE makes the kernel refuse to grow the file, as a full disk would."""
    dump = write_jsonl(
        tmp_path / "d.jsonl", [flat(i, image_code=shader(i) + "//" + "z" * 3000) for i in range(3000)]
    )
    db = tmp_path / "cat.db"
    prelude = (
        "import resource, signal, sys;"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN);"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (3_000_000, 3_000_000));"
        "from harvest.cli import main; sys.argv[0] = 'harvest'; main()"
    )
    cmd = [sys.executable, "-c", prelude, "import", str(dump), "--db", str(db), "--batch-size", "50"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "full" in proc.stderr and "resumes" in proc.stderr
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    committed = con.execute("SELECT items_done FROM import_run").fetchone()[0]
    assert 0 < committed < 3000
    assert con.execute("SELECT count(*) FROM program").fetchone()[0] == committed
    con.close()
    # with space again, the same command finishes the job
    rest = subprocess.run(
        [sys.executable, "-m", "harvest.cli", "import", str(dump), "--db", str(db), "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(rest.stdout)["added"] == 3000 - committed


def test_a_read_only_catalogue_is_refused_in_one_line(catalogue, tmp_path, capsys):
    dump = write_jsonl(tmp_path / "d.jsonl", [flat(1)])
    path = catalogue.url.removeprefix("sqlite:///")
    catalogue.close()
    code = run_app(harvest_app, "harvest", ["import", str(dump), "--db", f"file:{path}?mode=ro"])
    err = capsys.readouterr().err
    assert code == 3
    assert "read-only" in err and "Traceback" not in err


def test_a_truncated_zip_is_a_clear_error(catalogue, tmp_path):
    good = tmp_path / "s21k.zip"
    with zipfile.ZipFile(good, "w") as z:
        z.writestr(
            "shadertoy/a/aaaaaa.fragment",
            json.dumps(
                {
                    "Shader": {
                        "info": {"id": "aaaaaa"},
                        "renderpass": [
                            {"type": "image", "name": "Image", "code": shader(1), "inputs": [], "outputs": []}
                        ],
                    }
                }
            ),
        )
    data = good.read_bytes()
    broken = tmp_path / "broken.zip"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputFormatError):
        import_path(catalogue, broken, "shaders21k")
    assert import_path(catalogue, good).added == 1
    assert program_ids(catalogue) == ["aaaaaa"]


def test_zip_members_that_try_to_escape_are_skipped_and_nothing_is_written_outside(catalogue, tmp_path):
    z_path = tmp_path / "evil.zip"
    doc = {
        "Shader": {
            "info": {"id": "evil01"},
            "renderpass": [
                {"type": "image", "name": "Image", "code": shader(2), "inputs": [], "outputs": []}
            ],
        }
    }
    with zipfile.ZipFile(z_path, "w") as z:
        z.writestr("../../shadertoy/e/evil01.fragment", json.dumps(doc))
        z.writestr(
            "shadertoy/o/okay01.fragment",
            json.dumps(doc | {"Shader": doc["Shader"] | {"info": {"id": "okay01"}}}),
        )
    before = sorted(p.name for p in tmp_path.parent.iterdir())
    report = import_path(catalogue, z_path, "shaders21k")
    assert report.bad_count == 1 and "unsafe" in report.bad[0].reason
    assert program_ids(catalogue) == ["okay01"]
    assert sorted(p.name for p in tmp_path.parent.iterdir()) == before


def test_an_unknown_format_or_missing_path_says_what_to_do(catalogue, tmp_path):
    with pytest.raises(InputFormatError, match="does not exist"):
        import_path(catalogue, tmp_path / "nope.jsonl")
    odd = tmp_path / "odd.txt"
    odd.write_text("hello")
    with pytest.raises(InputFormatError) as err:
        import_path(catalogue, odd)
    assert "--format" in (err.value.hint or "")
    with pytest.raises(UsageProblem, match="unknown import format 'csv'"):
        import_path(catalogue, odd, "csv")


def test_import_run_records_counts(catalogue, tmp_path):
    dump = write_jsonl(tmp_path / "d.jsonl", [flat(0), "{bad", flat(2)])
    import_path(catalogue, dump)
    with catalogue.session() as s:
        run = s.execute(select(ImportRun)).scalar_one()
        assert (run.items_done, run.added, run.bad, run.complete) == (3, 2, 1, True)


def test_a_locked_catalogue_is_reported_not_corrupted(catalogue, tmp_path, monkeypatch):
    import corpus.db as dbmod

    dump = write_jsonl(tmp_path / "d.jsonl", [flat(0)])
    path = catalogue.url.removeprefix("sqlite:///")
    catalogue.close()
    monkeypatch.setattr(dbmod, "BUSY_TIMEOUT_MS", 200)
    holder = sqlite3.connect(path)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(CatalogueError, match="locked"):
            import_path(open_catalogue(path), dump)
    finally:
        holder.rollback()
        holder.close()
    assert import_path(open_catalogue(path), dump).added == 1


def test_an_import_that_finds_nothing_fails_and_says_why(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no shaders here")
    db = str(tmp_path / "c.db")
    assert run_app(harvest_app, "harvest", ["import", str(empty), "--db", db]) == 4
    assert "no programs found in" in capsys.readouterr().err
    wrong = write_jsonl(tmp_path / "w.jsonl", [flat(1), flat(2)])
    assert (
        run_app(harvest_app, "harvest", ["import", str(wrong), "--format", "glslsandbox-dump", "--db", db])
        == 4
    )
    assert "every record" in capsys.readouterr().err


def test_a_folder_of_shader_json_files_is_read_as_shadertoy_json(catalogue, tmp_path):
    folder = tmp_path / "site"
    folder.mkdir()
    for i in range(3):
        doc = {
            "ver": "0.1",
            "info": {"id": f"site0{i}", "name": f"s{i}"},
            "renderpass": [
                {"type": "image", "name": "Image", "code": shader(i), "inputs": [], "outputs": []}
            ],
        }
        (folder / f"s{i}.json").write_text(json.dumps(doc))
    report = import_path(catalogue, folder)
    assert (report.format, report.added) == ("shadertoy-json", 3)


def test_an_unknown_format_is_a_usage_error_that_lists_the_formats(tmp_path, capsys):
    dump = write_jsonl(tmp_path / "d.jsonl", [flat(0)])
    args = ["import", str(dump), "--format", "bogus", "--db", str(tmp_path / "c.db")]
    assert run_app(harvest_app, "harvest", args) == 2
    err = capsys.readouterr().err
    assert "error: unknown import format 'bogus'" in err
    assert "hint: use one of: shaders21k, shadertoys-jsonl, shadertoy-json" in err
    assert not (tmp_path / "c.db").exists()  # refused before anything was made


def test_an_import_reports_progress_in_bytes_of_the_file_as_stored(catalogue, tmp_path, monkeypatch, capsys):
    import gzip

    import corpus.cliutils
    from harvest.importing import progress_total

    dump = tmp_path / "d.jsonl.gz"
    dump.write_bytes(gzip.compress(b"".join(json.dumps(flat(i)).encode() + b"\n" for i in range(500))))
    moves: list[int] = []
    import_path(catalogue, dump, batch_size=100, progress=moves.append)
    assert len(moves) >= 5 and sum(moves) == dump.stat().st_size == progress_total(dump)

    folder = tmp_path / "shaders"
    folder.mkdir()
    for i in range(3):
        (folder / f"s{i}.frag").write_text(shader(i))
    moves = []
    import_path(catalogue, folder, progress=moves.append)
    assert progress_total(folder) is None and sum(moves) == 3  # no known total: records

    import harvest.cli

    seen = []
    assert harvest.cli.progress is corpus.cliutils.progress  # the shared progress line, not one of its own

    def spy(description, total=None):
        seen.append((description, total))
        return corpus.cliutils.progress(description, total)

    monkeypatch.setattr(harvest.cli, "progress", spy)
    again = tmp_path / "e.jsonl.gz"
    again.write_bytes(dump.read_bytes())
    assert run_app(harvest_app, "harvest", ["import", str(again), "--db", str(tmp_path / "c.db")]) == 0
    assert seen == [("importing e.jsonl.gz (bytes)", again.stat().st_size)]


def test_an_unexpected_error_on_one_record_is_a_bad_record_and_the_import_goes_on(
    tmp_path, capsys, monkeypatch
):
    import corpus.store
    import harvest.importers.dumps as dumps

    real_parse = dumps.PARSERS["shadertoys-jsonl"]

    def parse(value, origin):  # a parser bug that only one record meets
        if value.get("id") == "t000002":
            raise RecursionError("maximum recursion depth exceeded")
        return real_parse(value, origin=origin)

    real_decide = corpus.store.decide_for_record

    def decide(record, default):  # a licence-detection bug that only one record meets
        if record.external_id == "t000004":
            raise RuntimeError("detector fell over")
        return real_decide(record, default)

    monkeypatch.setitem(dumps.PARSERS, "shadertoys-jsonl", parse)
    monkeypatch.setattr(corpus.store, "decide_for_record", decide)
    dump = write_jsonl(tmp_path / "d.jsonl", [flat(i) for i in range(8)])
    db = str(tmp_path / "c.db")
    code = run_app(harvest_app, "harvest", ["import", str(dump), "--db", db, "--batch-size", "3"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "Traceback" not in err
    assert f"skipped {dump}:3: unexpected error (RecursionError: maximum recursion depth exceeded)" in err
    assert f"skipped {dump}:5: unexpected error (RuntimeError: detector fell over)" in err
    catalogue = open_catalogue(db)
    assert program_ids(catalogue) == [f"t{i:06d}" for i in (0, 1, 3, 5, 6, 7)]
    with catalogue.session() as s:
        run = s.execute(select(ImportRun)).scalar_one()
    assert (run.added, run.bad, run.items_done, run.complete) == (6, 2, 8, True)
