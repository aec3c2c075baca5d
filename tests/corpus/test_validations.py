"""The catalogue's side of validation and vetting (corpus.validations), without rendering."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from corpus.models import Profile, Validation
from corpus.programs import find_program
from corpus.queries import ProgramFilter, list_programs, stats
from corpus.validations import (
    PROFILE_FIELDS,
    load_program,
    nothing_vetted_hint,
    pending_validation,
    program_verdict,
    record_validations,
    store_verdicts,
    validation_counts,
    vetting_inputs,
    work_items,
)
from tests.conftest import GRADIENT, make_record
from tests.corpus.helpers import program_keys, store

pytestmark = pytest.mark.both_backends

LLVMPIPE = "Mesa | llvmpipe (LLVM 15.0.6, 256 bits) | 4.5 (Core Profile) Mesa 22.3.6"
GPU = "NVIDIA Corporation | NVIDIA H100 | 4.5.0 NVIDIA 550"


def _result(program: dict, status: str, renderer: str = LLVMPIPE, sizes=(), **extra) -> dict:
    profiles = [{"width": w, "height": h, **dict.fromkeys(PROFILE_FIELDS, float(w))} for w, h in sizes]
    return {
        "code_sha256": program["code_sha256"],
        "dialect": program["dialect"],
        "renderer": renderer,
        "status": status,
        "profiles": profiles,
        **extra,
    }


def _verdict(catalogue, key: str, *, vetted: bool, reasons: list[str]) -> None:
    """Store a verdict on ``key``'s current code, as render vet would."""
    with catalogue.session() as s:
        program = find_program(s, key)
        row = {"program_id": program.id, "code_sha256": program.code_sha256, "renderer": LLVMPIPE}
    store_verdicts(catalogue, [row | {"vetted": vetted, "reasons": reasons}], "p")


@pytest.fixture
def programs(catalogue):
    """Four programs: two with the same code (one validation serves both), two others."""
    store(
        catalogue,
        [
            make_record("a", GRADIENT),
            make_record("a_copy", GRADIENT),
            make_record("b", GRADIENT + "// b\n"),
            make_record("c", "void mainImage(out vec4 o, in vec2 f){ o = vec4(1.0) }"),
        ],
    )
    return catalogue


def test_each_distinct_code_is_pending_once_until_validated_for_this_renderer(programs):
    pending = pending_validation(programs, LLVMPIPE)
    assert [key for _, key in pending] == ["shadertoy:a", "shadertoy:b", "shadertoy:c"]
    items = list(work_items(programs, [pid for pid, _ in pending]))
    assert [i["program"] for i in items] == ["shadertoy:a", "shadertoy:b", "shadertoy:c"]
    assert items[0]["passes"][0]["code"] == GRADIENT
    record_validations(
        programs, [_result(items[0], "ok"), _result(items[2], "compile_error", log="0:1 error")]
    )
    assert [key for _, key in pending_validation(programs, LLVMPIPE)] == ["shadertoy:b"]
    assert len(pending_validation(programs, LLVMPIPE, again=True)) == 3
    assert len(pending_validation(programs, GPU)) == 3  # another driver validates again
    flt = ProgramFilter(code="// b")
    assert [key for _, key in pending_validation(programs, LLVMPIPE, flt)] == ["shadertoy:b"]


def test_a_new_result_replaces_the_old_one_with_its_profiles(programs):
    a = load_program(programs, "shadertoy:a")
    record_validations(programs, [_result(a, "ok", sizes=[(64, 64), (256, 256)])])
    record_validations(programs, [_result(a, "timeout", sizes=[(128, 128)])])
    with programs.session() as s:
        assert s.execute(select(Validation.status)).scalars().all() == ["timeout"]
        assert s.execute(select(Profile.width)).scalars().all() == [128]


def test_counts_and_status_filters_see_the_latest_validation_of_each_programs_code(programs):
    a, b = load_program(programs, "shadertoy:a"), load_program(programs, "shadertoy:b")
    record_validations(programs, [_result(a, "ok"), _result(b, "blank")])
    record_validations(programs, [_result(b, "ok", renderer=GPU)])
    assert validation_counts(programs) == {"ok": 3, "unvalidated": 1}
    assert validation_counts(programs, LLVMPIPE) == {"ok": 2, "blank": 1, "unvalidated": 1}
    assert stats(programs)["by_validation_status"] == {"ok": 3, "unvalidated": 1}
    assert program_keys(programs, ProgramFilter(statuses=["ok"])) == [
        "shadertoy:a",
        "shadertoy:a_copy",
        "shadertoy:b",
    ]
    flt = ProgramFilter(statuses=["blank", "unvalidated"], renderer=LLVMPIPE)
    assert program_keys(programs, flt) == ["shadertoy:b", "shadertoy:c"]


def test_listing_rows_carry_status_verdict_and_the_256_frame_time(programs):
    a = load_program(programs, "shadertoy:a")
    record_validations(programs, [_result(a, "ok", sizes=[(512, 512), (256, 256), (64, 64)])])
    inputs = {i["program"]: i for i in vetting_inputs(programs, LLVMPIPE)}
    assert inputs["shadertoy:a"]["validation"]["status"] == "ok"
    assert sorted(p["width"] for p in inputs["shadertoy:a"]["profiles"]) == [64, 256, 512]
    assert inputs["shadertoy:c"]["validation"] is None and inputs["shadertoy:c"]["profiles"] == []
    verdicts = [
        {"program_id": i["program_id"], "code_sha256": i["code_sha256"], "renderer": LLVMPIPE}
        | {
            "vetted": i["program"] == "shadertoy:a",
            "reasons": [] if i["program"] == "shadertoy:a" else ["no"],
        }
        for i in inputs.values()
    ]
    assert store_verdicts(programs, verdicts, "policy1") == 4
    rows = {r["program"]: r for r in list_programs(programs, ProgramFilter())}
    assert (rows["shadertoy:a"]["status"], rows["shadertoy:a"]["vetted"]) == ("ok", True)
    assert rows["shadertoy:a"]["frame_ms_median"] == 256.0
    assert (rows["shadertoy:c"]["status"], rows["shadertoy:c"]["vetted"]) == (None, False)
    assert program_keys(programs, ProgramFilter(vetted=True)) == ["shadertoy:a"]
    assert program_verdict(programs, "shadertoy:a")["policy_hash"] == "policy1"


def test_a_verdict_on_old_code_no_longer_vets_the_program(programs):
    _verdict(programs, "shadertoy:a", vetted=True, reasons=[])
    assert program_keys(programs, ProgramFilter(vetted=True)) == ["shadertoy:a"]
    store(programs, [make_record("a", GRADIENT + "// changed\n")])
    assert program_keys(programs, ProgramFilter(vetted=True)) == []
    assert program_verdict(programs, "shadertoy:a")["current_code"] is False


def test_with_nothing_vetted_the_hint_says_what_to_run(programs):
    with programs.session() as s:
        assert "render validate" in nothing_vetted_hint(s)
    a = load_program(programs, "shadertoy:a")
    record_validations(programs, [_result(a, "ok")])
    with programs.session() as s:
        assert nothing_vetted_hint(s) == "no program is vetted yet: run render vet"
    _verdict(programs, "shadertoy:a", vetted=False, reasons=["no profile at 256x256"])
    with programs.session() as s:
        assert "render validate --again --sizes 256" in nothing_vetted_hint(s)
