"""Format detection from folder layout, suffix, or the first record's keys."""

from __future__ import annotations

import json

import pytest

from corpus.errors import InputFormatError
from harvest.importers import FORMATS, detect_format

CODE = "void mainImage(out vec4 c, in vec2 p) { c = vec4(1.0); }"
SHADER = {
    "ver": "0.1",
    "info": {"id": "abc123"},
    "renderpass": [{"code": CODE, "name": "Image", "type": "image"}],
}
FLAT = {"id": "abc123", "name": "n", "image_code": CODE, "license": "MIT"}
SANDBOX = {"_id": 1, "versions": [{"code": "void main() { gl_FragColor = vec4(1.0); }"}], "user": "u"}
TRANSITION = {
    "name": "cut",
    "author": "a",
    "license": "MIT",
    "glsl": "vec4 transition(vec2 uv) { return vec4(1); }",
}


def lines(*objs) -> str:
    return "".join(json.dumps(o) + "\n" for o in objs)


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        (json.dumps({"Shader": SHADER}), "shadertoy-json"),
        (json.dumps({"Shader": SHADER}, indent=2), "shadertoy-json"),
        ("\ufeff  \n" + json.dumps(SHADER, indent=4), "shadertoy-json"),
        (json.dumps([{"Shader": SHADER}, SHADER]), "shadertoy-json"),
        (lines({"Shader": SHADER}, SHADER), "shadertoy-json"),
        (json.dumps({"Error": "Invalid key"}), "shadertoy-json"),
        (lines(FLAT, FLAT), "shadertoys-jsonl"),
        (lines(SANDBOX), "glslsandbox-dump"),
        (json.dumps([SANDBOX]), "glslsandbox-dump"),
        (json.dumps([TRANSITION], indent=2), "gl-transitions"),
        (lines(TRANSITION), "gl-transitions"),
        ('{"id": "x", "name": "broken\n' + lines(FLAT), "shadertoys-jsonl"),
    ],
)
def test_json_files_are_told_apart_by_their_first_record(tmp_path, text, fmt):
    path = tmp_path / "dump.data"
    path.write_text(text, encoding="utf-8")
    assert detect_format(path) == fmt
    assert fmt in FORMATS


@pytest.mark.parametrize("text", ["", "   \n", "hello world", json.dumps([1, 2]), json.dumps({"a": 1}), "[{"])
def test_unknown_files_raise_with_a_format_hint(tmp_path, text):
    path = tmp_path / "mystery.json"
    path.write_text(text)
    with pytest.raises(InputFormatError, match="cannot tell the format") as info:
        detect_format(path)
    assert "pass --format with one of shaders21k" in info.value.hint


def test_folders_and_archives(tmp_path):
    (tmp_path / "plain").mkdir()
    assert detect_format(tmp_path / "plain") == "dir"
    for marker in ("shadertoy", "twigl"):
        (tmp_path / marker / marker).mkdir(parents=True)
        assert detect_format(tmp_path / marker) == "shaders21k"
    (tmp_path / "listed").mkdir()
    (tmp_path / "listed" / "shaders_list").write_text("x\n")
    assert detect_format(tmp_path / "listed") == "shaders21k"
    (tmp_path / "any.ZIP").write_bytes(b"")
    assert detect_format(tmp_path / "any.ZIP") == "shaders21k"


def test_missing_path_raises(tmp_path):
    with pytest.raises(InputFormatError, match="does not exist"):
        detect_format(tmp_path / "gone.json")
