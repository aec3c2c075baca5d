"""Real-format samples in ../shared/samples parse without a single bad record (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpus.records import ProgramRecord
from harvest.importers import BadRecord, detect_format, read_records

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "samples"
pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason="../shared/samples is absent")


def read_all(path: Path) -> list[ProgramRecord]:
    items = list(read_records(path))
    bad = [i for i in items if isinstance(i, BadRecord)]
    assert bad == []
    return items


def check_buffer_refs(record: ProgramRecord) -> None:
    names = {p.name for p in record.passes}
    for p in record.passes:
        for i in p.inputs:
            if i.kind == "buffer":
                assert i.ref in {"Buffer A", "Buffer B", "Buffer C", "Buffer D"}
                assert i.ref in names, f"{record.key} {p.name} reads {i.ref}, which it lacks"


def test_every_api_response_line_parses():
    path = SAMPLES / "shadertoy-api" / "2024-07.jsonl"
    assert detect_format(path) == "shadertoy-json"
    records = read_all(path)
    with path.open("rb") as f:
        assert len(records) == sum(1 for line in f if line.strip())
    multipass = [r for r in records if len(r.passes) >= 5]
    assert multipass
    for record in records:
        assert record.source == "shadertoy" and record.created_at is not None
        assert [p.type for p in record.passes] == sorted(
            (p.type for p in record.passes), key=("common", "buffer", "cubemap", "image", "sound").index
        )
        check_buffer_refs(record)


@pytest.mark.parametrize(
    "name",
    sorted(p.name for p in (SAMPLES / "shadertoy-site" / "shaders").glob("*.json"))
    if SAMPLES.is_dir()
    else [],
)
def test_every_site_shader_parses(name):
    (record,) = read_all(SAMPLES / "shadertoy-site" / "shaders" / name)
    check_buffer_refs(record)
    assert all(
        p.name in {"Image", "Common", "Sound", "Cube A"} or p.name.startswith("Buffer ")
        for p in record.passes
    )


def test_buf_a_site_shader_reads_its_own_buffer():
    (record,) = read_all(SAMPLES / "shadertoy-site" / "shaders" / "basic_montecarlo.json")
    assert [(p.name, [i.ref for i in p.inputs]) for p in record.passes] == [
        ("Buffer A", ["Buffer A"]),
        ("Image", ["Buffer A"]),
    ]


def test_flattened_dataset_records_parse():
    path = SAMPLES / "shadertoys-dataset" / "20k_2014-02.jsonl"
    assert detect_format(path) == "shadertoys-jsonl"
    records = read_all(path)
    assert len(records) == 11
    assert all(r.licence_field and r.licence_field.lower() == "cc-by-nc-sa-3.0" for r in records)
    assert all(r.image_pass() is not None for r in records)
