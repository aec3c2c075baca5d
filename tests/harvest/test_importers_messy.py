"""Messy records in a dump (odd field types, huge code, a pass with no code, text no database
takes): each gets one clear line or is stored as well as it can be, and the import goes on."""

from __future__ import annotations

import json
from pathlib import Path

from corpus.queries import show_program
from harvest.importers import MAX_CODE_BYTES
from harvest.importing import import_path

IMAGE = "void mainImage(out vec4 c, in vec2 p) { c = vec4(p / iResolution.xy, 0.5, 1.0); }\n"
BUFFER = "void mainImage(out vec4 c, in vec2 p) { c = vec4(0.1); }\n"


def record(shader_id: str, **fields) -> dict:
    base = {
        "id": shader_id,
        "name": f"shader {shader_id}",
        "author": "someone",
        "tags": ["test"],
        "date": "1500000000",
        "image_code": IMAGE,
        "image_inputs": [],
        "license": "CC-BY-NC-SA-3.0",
    }
    return {**base, **fields}


#: what each record is written to show -> (the record, the bad line's reason, or None if stored)
MESSY = {
    "a number for an id": (record(12345), None),
    "a list for a title, a dict for an author": (record("odd002", name=["x"], author={"n": 1}), None),
    "tags as one string": (record("odd003", tags="noise, fbm"), None),
    "a date nobody can read": (record("odd004", date="yesterday"), None),
    "inputs that are not a list": (record("odd005", image_inputs="none"), None),
    "junk among the inputs": (record("odd006", image_inputs=[1, None, {"ctype": 5}, {"channel": "x"}]), None),
    "a licence that is a list": (record("odd007", license=["mit"]), None),
    "a lone surrogate in the title": (record("odd008", name="half \ud83d an emoji"), None),
    "a NUL in the description": (record("odd009", description="a\x00b"), None),
    "a buffer with inputs and no code": (
        record("odd010", buffer_a_code="", buffer_a_inputs=[{"ctype": "keyboard"}]),
        None,
    ),
    "no id": (record(None), "shadertoys record has no id"),
    "an image pass with no code": (record("bad002", image_code=""), "bad002 has no Image pass with code"),
    "code that is a number": (record("bad003", image_code=42), "bad003 has no Image pass with code"),
    "code over the limit": (
        record("bad004", image_code="//" + "x" * MAX_CODE_BYTES),
        f"code field too large ({MAX_CODE_BYTES + 2} bytes in Image, limit 4 MiB)",
    ),
    "a NUL in the code": (record("bad005", image_code=IMAGE + "\x00"), "code of Image holds a NUL character"),
    "a lone surrogate in the code": (
        record("bad006", buffer_a_code=BUFFER + "// \udc00"),
        "code of Buffer A is not text (a lone UTF-16 surrogate",
    ),
    "a record that is a list": ([1, 2], "a shadertoys record is a JSON object, not list"),
}


def write(path: Path) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for rec, _ in MESSY.values():
            f.write(json.dumps(rec) + "\n")  # json.dumps writes lone surrogates as \ud83d escapes
    return path


def test_messy_records_get_a_clear_line_each_and_the_import_goes_on(catalogue, tmp_path):
    dump = write(tmp_path / "messy.jsonl")
    report = import_path(catalogue, dump, "shadertoys-jsonl")

    bad = {b.location.rsplit(":", 1)[1]: b.reason for b in report.bad}
    for line, (what, (_, reason)) in enumerate(MESSY.items(), 1):
        if reason is None:
            assert str(line) not in bad, f"{what}: {bad.get(str(line))}"
        else:
            assert reason in bad.get(str(line), ""), f"{what}: {bad.get(str(line))}"
    assert report.added == sum(reason is None for _, reason in MESSY.values())
    assert show_program(catalogue, "shadertoy:12345")["title"] == "shader 12345"
    assert show_program(catalogue, "shadertoy:odd003")["tags"] == ["noise", "fbm"]
    assert show_program(catalogue, "shadertoy:odd008")["title"] == "half \ufffd an emoji"
    assert show_program(catalogue, "shadertoy:odd009")["description"] == "ab"
    assert [p["name"] for p in show_program(catalogue, "shadertoy:odd010")["passes"]] == ["Image"]
