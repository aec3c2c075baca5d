"""Shaders21k-style folders and zips: shadertoy JSON fragments, twigl code with modes, damage."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from corpus.errors import InputFormatError
from corpus.records import ProgramRecord
from harvest.importers import BadRecord, detect_format, read_records

TOY = "void mainImage(out vec4 c, in vec2 p) { c = vec4(p / iResolution.xy, 0.75, 1.0); }\n"
BUF = "void mainImage(out vec4 c, in vec2 p) { c = 0.9 * texture(iChannel0, p / iResolution.xy); }\n"
TWIGL = "o=vec4(FC.xy/r,sin(t),1);"


def toy(shader_id: str) -> dict:
    return {
        "ver": "0.1",
        "info": {"id": shader_id, "name": shader_id, "username": "u"},
        "renderpass": [
            {"inputs": [{"id": 257, "ctype": "buffer", "channel": 0}], "code": TOY, "type": "image"},
            {"outputs": [{"id": 257, "channel": 0}], "code": BUF, "name": "Buf A", "type": "buffer"},
        ],
    }


def files() -> dict[str, bytes]:
    return {
        "shaders_list": b"shadertoy/a/aaa111\ntwigl/spiral\n",
        "shadertoy/a/aaa111.fragment": json.dumps({"Shader": toy("aaa111")}).encode(),
        "shadertoy/b/bbb222.fragment": json.dumps(toy("bbb222"), indent=2).encode(),
        "twigl/fragments/spiral.fragment": TWIGL.encode(),
        "twigl/modes/spiral.fragment": b"geekest\nTrue\nFalse\nFalse\n",
        "twigl/fragments/orphan.fragment": TWIGL.encode(),
        "README.md": b"not a shader",
    }


def make_folder(root: Path, contents: dict[str, bytes]) -> Path:
    for name, data in contents.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def make_zip(path: Path, contents: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in contents.items():
            zf.writestr(name, data)
    return path


def split(items):
    items = list(items)
    return [i for i in items if isinstance(i, ProgramRecord)], [i for i in items if isinstance(i, BadRecord)]


def test_folder_is_read_in_sorted_order_with_passes_and_modes(tmp_path):
    root = make_folder(tmp_path / "s21k", files())
    assert detect_format(root) == "shaders21k"
    records, bad = split(read_records(root))
    assert [r.key for r in records] == ["shadertoy:aaa111", "shadertoy:bbb222", "twigl:spiral"]
    assert records[0].origin == f"{root}!shadertoy/a/aaa111.fragment"
    assert [p.name for p in records[1].passes] == ["Buffer A", "Image"]
    assert records[1].image_pass().inputs[0].ref == "Buffer A"
    assert (records[2].dialect, records[2].image_pass().code) == ("twigl-geekest-300es", TWIGL)
    assert bad == [
        BadRecord(f"{root}!twigl/fragments/orphan.fragment", "no mode file twigl/modes/orphan.fragment")
    ]


def test_zip_reads_like_the_folder(tmp_path):
    folder_records, _ = split(read_records(make_folder(tmp_path / "f", files())))
    archive = make_zip(tmp_path / "s21k.zip", files())
    assert detect_format(archive) == "shaders21k"
    zip_records, bad = split(read_records(archive))
    assert [(r.key, r.code_sha256) for r in zip_records] == [(r.key, r.code_sha256) for r in folder_records]
    assert zip_records[0].origin == f"{archive}!shadertoy/a/aaa111.fragment"
    assert [b.location for b in bad] == [f"{archive}!twigl/fragments/orphan.fragment"]


def test_collection_one_folder_down_is_found(tmp_path):
    archive = make_zip(tmp_path / "nested.zip", {f"shader_codes/{k}": v for k, v in files().items()})
    records, _ = split(read_records(archive))
    assert [r.key for r in records] == ["shadertoy:aaa111", "shadertoy:bbb222", "twigl:spiral"]
    root = make_folder(tmp_path / "outer", {f"shader_codes/{k}": v for k, v in files().items()})
    assert detect_format(root) == "shaders21k"


def test_unsafe_member_names_are_reported_and_skipped(tmp_path):
    contents = {
        **files(),
        "../evil.fragment": b"x",
        "shadertoy/../../up.fragment": b"{}",
        "/abs.fragment": b"x",
    }
    archive = make_zip(tmp_path / "evil.zip", contents)
    records, bad = split(read_records(archive))
    assert [r.key for r in records] == ["shadertoy:aaa111", "shadertoy:bbb222", "twigl:spiral"]
    unsafe = sorted(b.location for b in bad if b.reason == "unsafe member name: skipped")
    assert unsafe == sorted(
        f"{archive}!{n}" for n in ("../evil.fragment", "shadertoy/../../up.fragment", "/abs.fragment")
    )
    assert not (tmp_path.parent / "evil.fragment").exists()


def test_truncated_zip_raises_a_clear_error_at_the_call(tmp_path):
    archive = make_zip(tmp_path / "whole.zip", files())
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(InputFormatError, match="not a readable zip archive.*truncated or damaged"):
        read_records(truncated)


def test_corrupt_member_is_a_bad_record_and_the_rest_are_read(tmp_path):
    contents = {
        "shadertoy/a/aaa111.fragment": json.dumps(toy("aaa111")).encode() * 3,
        "shadertoy/b/bbb222.fragment": json.dumps(toy("bbb222")).encode(),
    }
    archive = make_zip(tmp_path / "c.zip", contents)
    data = bytearray(archive.read_bytes())
    start = data.index(b"shadertoy/a/aaa111.fragment") + len("shadertoy/a/aaa111.fragment")
    data[start + 5 : start + 25] = bytes(20)  # damage the first member's compressed data
    archive.write_bytes(bytes(data))
    records, bad = split(read_records(archive))
    assert [r.external_id for r in records] == ["bbb222"]
    assert bad[0].location == f"{archive}!shadertoy/a/aaa111.fragment"
    assert bad[0].reason.startswith("cannot read member")


def test_bad_fragments_are_reported(tmp_path):
    no_id = toy("x")
    del no_id["info"]["id"]
    root = make_folder(
        tmp_path / "bad",
        {
            "shadertoy/a/broken.fragment": b'{"Shader": {',
            "shadertoy/a/noid.fragment": json.dumps(no_id).encode(),
            "shadertoy/a/error.fragment": b'{"Error": "Shader not found"}',
            "twigl/fragments/latin1.fragment": "o=vec4(\xe9);".encode("latin-1"),
            "twigl/modes/latin1.fragment": b"classic\nFalse\nFalse\nFalse",
            "twigl/fragments/empty.fragment": b"  \n",
            "twigl/modes/empty.fragment": b"geek\nFalse\nFalse\nFalse",
            "twigl/fragments/oddmode.fragment": TWIGL.encode(),
            "twigl/modes/oddmode.fragment": b"wizard\nFalse\nFalse\nFalse",
        },
    )
    records, bad = split(read_records(root, "shaders21k"))
    assert records == []
    reasons = {b.location.split("!", 1)[1]: b.reason for b in bad}
    assert reasons["shadertoy/a/broken.fragment"].startswith("malformed JSON")
    assert reasons["shadertoy/a/noid.fragment"] == "Shadertoy shader has no id"
    assert reasons["shadertoy/a/error.fragment"] == "Shadertoy API error: Shader not found"
    assert reasons["twigl/fragments/latin1.fragment"].startswith("not valid UTF-8")
    assert reasons["twigl/fragments/empty.fragment"] == "twigl fragment empty has no code"
    assert reasons["twigl/fragments/oddmode.fragment"].startswith("unknown twigl mode")
