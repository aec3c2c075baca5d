"""JSON dump imports: layouts, bad records reported in place, bounded memory."""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path

import pytest

from corpus.errors import InputFormatError, UsageProblem
from corpus.records import ProgramRecord
from harvest.importers import MAX_CODE_BYTES, BadRecord, read_records

IMAGE = "void mainImage(out vec4 c, in vec2 p) { c = vec4(p / iResolution.xy, 0.25, 1.0); }\n"
SANDBOX = "uniform float time;\nuniform vec2 resolution;\nvoid main() { gl_FragColor = vec4(sin(time)); }\n"


def shader(shader_id: str, code: str = IMAGE) -> dict:
    return {
        "ver": "0.1",
        "info": {"id": shader_id, "name": f"n{shader_id}", "username": "u", "date": "1600000000"},
        "renderpass": [{"inputs": [], "outputs": [], "code": code, "name": "Image", "type": "image"}],
    }


def flat(shader_id: str, code: str = IMAGE) -> dict:
    return {
        "id": shader_id,
        "name": "f",
        "author": "u",
        "image_code": code,
        "image_inputs": [],
        "license": "MIT",
    }


def write_lines(path: Path, lines: list) -> Path:
    with path.open("wb") as f:
        for line in lines:
            f.write(line if isinstance(line, bytes) else json.dumps(line).encode())
            f.write(b"\n")
    return path


def split(items) -> tuple[list[ProgramRecord], list[BadRecord]]:
    items = list(items)
    return [i for i in items if isinstance(i, ProgramRecord)], [i for i in items if isinstance(i, BadRecord)]


# layouts ---------------------------------------------------------------------------------------


def test_shadertoy_json_lines_of_api_responses_and_bare_shaders(tmp_path):
    path = write_lines(tmp_path / "a.jsonl", [{"Shader": shader("aaa111")}, shader("bbb222")])
    records, bad = split(read_records(path))
    assert bad == []
    assert [(r.key, r.origin) for r in records] == [
        ("shadertoy:aaa111", f"{path}:1"),
        ("shadertoy:bbb222", f"{path}:2"),
    ]


def test_shadertoy_json_single_pretty_printed_response(tmp_path):
    path = tmp_path / "one.json"
    path.write_text(json.dumps({"Shader": shader("ccc333")}, indent=2))
    records, bad = split(read_records(path))
    assert ([r.key for r in records], bad) == (["shadertoy:ccc333"], [])
    assert records[0].origin == f"{path}:#0"


def test_shadertoy_json_array_items_are_located_by_index(tmp_path):
    path = tmp_path / "arr.json"
    path.write_text(json.dumps([shader("ddd444"), {"Shader": shader("eee555")}], indent=1))
    records, bad = split(read_records(path))
    assert bad == []
    assert [(r.external_id, r.origin) for r in records] == [
        ("ddd444", f"{path}:#0"),
        ("eee555", f"{path}:#1"),
    ]


def test_shadertoys_jsonl_flat_records(tmp_path):
    path = write_lines(tmp_path / "flat.jsonl", [flat("fff666"), flat("ggg777")])
    records, bad = split(read_records(path, "shadertoys-jsonl"))
    assert bad == []
    assert [(r.key, r.licence_field) for r in records] == [
        ("shadertoy:fff666", "MIT"),
        ("shadertoy:ggg777", "MIT"),
    ]


def test_glslsandbox_dump_lines_and_array(tmp_path):
    doc = {"_id": 5, "versions": [{"code": SANDBOX}, {"code": SANDBOX + "\n"}], "parent": None, "user": "x"}
    lines = write_lines(tmp_path / "gs.jsonl", [doc])
    array = tmp_path / "gs.json"
    array.write_text(json.dumps([doc]))
    for path in (lines, array):
        records, bad = split(read_records(path))
        assert bad == []
        assert [r.key for r in records] == ["glslsandbox:5.0", "glslsandbox:5.1"]


def test_gl_transitions_array(tmp_path):
    path = tmp_path / "transitions.json"
    glsl = "vec4 transition(vec2 uv) { return getToColor(uv); }"
    path.write_text(json.dumps([{"name": "cut", "author": "a", "license": "MIT", "glsl": glsl}]))
    records, bad = split(read_records(path))
    assert ([r.key for r in records], bad) == (["gl-transitions:cut"], [])


# bad records ----------------------------------------------------------------------------------------


def test_malformed_line_is_reported_with_its_line_number_and_the_rest_read(tmp_path):
    path = write_lines(
        tmp_path / "m.jsonl", [shader("aaa111"), b'{"ver": "0.1", "info": {', b"", shader("bbb222")]
    )
    records, bad = split(read_records(path, "shadertoy-json"))
    assert [r.external_id for r in records] == ["aaa111", "bbb222"]
    assert [r.origin for r in records] == [f"{path}:1", f"{path}:4"]
    assert len(bad) == 1 and bad[0].location == f"{path}:2"
    assert bad[0].reason.startswith("malformed JSON")


def test_record_without_id_is_reported(tmp_path):
    no_id = shader("x")
    no_id["info"].pop("id")
    path = write_lines(tmp_path / "n.jsonl", [no_id, shader("aaa111")])
    records, bad = split(read_records(path))
    assert [r.external_id for r in records] == ["aaa111"]
    assert bad == [BadRecord(f"{path}:1", "Shadertoy shader has no id")]


def test_non_utf8_line_is_reported_and_skipped(tmp_path):
    raw = json.dumps(shader("aaa111")).encode().replace(b"username", b"user\xff\xfename")
    path = write_lines(tmp_path / "u.jsonl", [raw, shader("bbb222")])
    records, bad = split(read_records(path, "shadertoy-json"))
    assert [r.external_id for r in records] == ["bbb222"]
    assert bad[0].location == f"{path}:1" and bad[0].reason.startswith("not valid UTF-8")


def test_empty_code_is_reported(tmp_path):
    doc = {"_id": 9, "versions": [{"code": SANDBOX}, {"code": "   "}]}
    path = write_lines(tmp_path / "e.jsonl", [flat("aaa111", code=""), doc])
    records, bad = split(read_records(path, "shadertoys-jsonl"))
    assert bad[0].location == f"{path}:1" and "no Image pass" in bad[0].reason
    records, bad = split(read_records(path, "glslsandbox-dump"))
    assert [r.key for r in records] == ["glslsandbox:9.0"]
    assert bad[-1] == BadRecord(f"{path}:2", "9.1: empty code")


def test_oversized_code_is_reported(tmp_path):
    big = IMAGE + "//" + "x" * MAX_CODE_BYTES + "\n"
    path = write_lines(tmp_path / "big.jsonl", [shader("big000", big), shader("aaa111")])
    records, bad = split(read_records(path))
    assert [r.external_id for r in records] == ["aaa111"]
    size = len(big.encode())
    assert bad == [BadRecord(f"{path}:1", f"code field too large ({size} bytes in Image, limit 4 MiB)")]


def test_truncated_array_yields_records_before_the_damage_and_names_the_offset(tmp_path):
    path = tmp_path / "t.json"
    text = json.dumps([shader("aaa111"), shader("bbb222"), shader("ccc333")])
    path.write_text(text[: len(text) - 40])
    records, bad = split(read_records(path, "shadertoy-json"))
    assert [r.external_id for r in records] == ["aaa111", "bbb222"]
    assert len(bad) == 1 and bad[0].location == f"{path}:#2"
    assert f"at or before byte {len(text) - 40}" in bad[0].reason


def test_duplicate_ids_are_both_yielded(tmp_path):
    path = write_lines(tmp_path / "d.jsonl", [shader("aaa111"), shader("aaa111", IMAGE + "\n")])
    records, bad = split(read_records(path))
    assert [r.key for r in records] == ["shadertoy:aaa111", "shadertoy:aaa111"] and bad == []


def test_api_error_document_is_a_bad_record(tmp_path):
    path = write_lines(tmp_path / "err.jsonl", [{"Error": "Invalid key"}, {"Shader": shader("aaa111")}])
    records, bad = split(read_records(path, "shadertoy-json"))
    assert [r.external_id for r in records] == ["aaa111"]
    assert bad == [BadRecord(f"{path}:1", "Shadertoy API error: Invalid key")]


def test_odd_structure_is_a_bad_record_not_a_crash(tmp_path):
    path = write_lines(tmp_path / "odd.jsonl", [{"Shader": {"info": 5}}, [1, 2], "text", shader("aaa111")])
    records, bad = split(read_records(path, "shadertoy-json"))
    assert [r.external_id for r in records] == ["aaa111"]
    assert [b.location for b in bad] == [f"{path}:1", f"{path}:2", f"{path}:3"]


def test_missing_path_and_unknown_format_raise_at_the_call(tmp_path):
    with pytest.raises(InputFormatError, match="does not exist"):
        read_records(tmp_path / "nope.jsonl")
    path = write_lines(tmp_path / "a.jsonl", [shader("aaa111")])
    with pytest.raises(UsageProblem, match="unknown import format 'csv'"):
        read_records(path, "csv")


# streaming -------------------------------------------------------------------------------------------


def test_fifty_megabyte_json_lines_file_is_read_in_bounded_memory(tmp_path):
    body = "// filler line to make the shader about twenty kilobytes long\n" * 330
    path = tmp_path / "big.jsonl"
    count = 0
    with path.open("w") as f:
        while f.tell() < 50 * 2**20:
            f.write(json.dumps({"Shader": shader(f"s{count:07d}", body + IMAGE)}) + "\n")
            count += 1
    started = time.perf_counter()
    tracemalloc.start()
    try:
        seen = sum(1 for item in read_records(path) if isinstance(item, ProgramRecord))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == count
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    assert time.perf_counter() - started < 5


def test_large_json_array_is_read_in_bounded_memory(tmp_path):
    body = "// filler\n" * 2000
    path = tmp_path / "big.json"
    with path.open("w") as f:
        f.write("[")
        for i in range(1000):
            f.write(("," if i else "") + json.dumps(shader(f"a{i:07d}", body + IMAGE)))
        f.write("]")
    assert path.stat().st_size > 20 * 2**20
    tracemalloc.start()
    try:
        seen = sum(1 for item in read_records(path) if isinstance(item, ProgramRecord))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == 1000
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MiB"


def test_overlong_line_is_skipped_without_reading_it_whole(tmp_path, monkeypatch):
    from harvest.importers import jsonstream

    monkeypatch.setattr(jsonstream, "MAX_DOCUMENT_BYTES", 2000)
    long_code = IMAGE + "//" + "x" * 5000
    path = write_lines(tmp_path / "long.jsonl", [shader("big000", long_code), shader("aaa111")])
    records, bad = split(read_records(path, "shadertoy-json"))
    assert [r.origin for r in records] == [f"{path}:2"]
    assert bad == [BadRecord(f"{path}:1", "line too long (over 2000 bytes)")]


def test_byte_order_mark_is_ignored(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(shader("aaa111")).encode() + b"\n")
    records, bad = split(read_records(path))
    assert ([r.external_id for r in records], bad) == (["aaa111"], [])
