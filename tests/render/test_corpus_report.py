"""benchmarks/corpus_report.py: the failure and vetting tables RESULTS.md gets for a catalogue."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from benchmarks.corpus_report import first_error_line, markdown, normalise, status_reasons, vetting_reasons
from corpus.store import ProgramStore
from corpus.validations import load_program, record_validations, store_verdicts
from tests.conftest import GRADIENT, make_record


def test_a_mesa_error_line_loses_its_location_names_and_numbers_but_says_which_names():
    log = "0:1(2): warning: unused\n0:12(34): error: `HW_PERFORMANCE' undeclared\n0:13(1): error: x"
    line = first_error_line(log)
    assert line == "0:12(34): error: `HW_PERFORMANCE' undeclared"
    assert normalise(line) == ("error: `…' undeclared", ["HW_PERFORMANCE"])
    assert normalise("error: too many uniforms: 1024 > 512")[0] == "error: too many uniforms: N > N"
    assert normalise("frame time at 256x256 74.5 ms > 60 ms")[0] == "frame time at Nx256 N ms > N ms"
    assert first_error_line(None) == "(no log)"
    assert first_error_line("killed after 30.0 s compiling") == "killed after 30.0 s compiling"


@pytest.fixture
def judged(catalogue, tmp_path):
    records = [make_record(f"p{i}", GRADIENT.replace("0.5 + ", f"0.{i} + ")) for i in range(5)]
    with catalogue.session() as s:
        ProgramStore(catalogue).store(records, s.connection())
    items = {f"p{i}": load_program(catalogue, f"shadertoy:p{i}") for i in range(5)}
    with catalogue.session() as s:
        ids = dict(s.execute(text("SELECT external_id, id FROM program")).all())
    logs = {
        "p0": ("compile_error", "0:3(5): error: `texture2D' undeclared"),
        "p1": ("compile_error", "0:9(1): error: `HW_PERFORMANCE' undeclared"),
        "p2": ("timeout", "killed after 30.0 s compiling"),
        "p3": ("ok", None),
    }  # p4 is not validated
    record_validations(
        catalogue,
        [
            {"code_sha256": items[k]["code_sha256"], "dialect": "shadertoy", "renderer": "r"}
            | {"status": status, "log": log}
            for k, (status, log) in logs.items()
        ],
    )
    verdicts = [
        {"program_id": ids[k], "code_sha256": items[k]["code_sha256"], "vetted": k == "p3"}
        | {"reasons": ["status ok"] if k == "p3" else [f"status {logs[k][0]}"]}
        for k in ("p0", "p1", "p2", "p3")
    ]
    reason = "not validated on this renderer yet: run render validate"
    verdicts.append({"program_id": ids["p4"], "code_sha256": "c", "vetted": False, "reasons": [reason]})
    store_verdicts(catalogue, verdicts, "policyhash")
    return str(tmp_path / "catalogue.db")


def test_each_status_has_its_share_and_its_reasons_and_the_vetting_its_rejections(judged):
    statuses = status_reasons(judged)
    assert statuses["renderer"] == "r" and statuses["programs"] == 5
    table = statuses["statuses"]
    assert [(s, e["programs"]) for s, e in table.items()] == [
        ("compile_error", 2),
        ("timeout", 1),
        ("ok", 1),
        ("unvalidated", 1),
    ]
    assert table["compile_error"]["share"] == pytest.approx(0.5)  # of the 4 validated
    assert table["unvalidated"]["share"] == pytest.approx(0.2)  # of all 5
    assert table["compile_error"]["reasons"] == [
        {"reason": "error: `…' undeclared", "programs": 2, "names": ["texture2D", "HW_PERFORMANCE"]}
    ]
    assert table["timeout"]["reasons"][0]["reason"] == "killed after N s compiling"
    vetting = vetting_reasons(judged)
    assert (vetting["judged"], vetting["vetted"], vetting["not_validated"]) == (4, 1, 1)
    assert {r["reason"]: r["programs"] for r in vetting["rejected"]} == {
        "status compile_error": 2,
        "status timeout": 1,
    }
    text = markdown(statuses, vetting)
    assert text.startswith("Validation of 4 of 5 programs on `r`:")
    assert "| compile_error | 2 | 50.0% | error: `…' undeclared (2: texture2D, HW_PERFORMANCE) |" in text
    assert "1 of 4 judged programs vetted (25.0%); 1 not validated yet left out." in text
    assert "| status compile_error | 2 | 50.0% |" in text
