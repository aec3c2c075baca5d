"""GLSL Sandbox, twigl, gl-transitions and plain shader files → ProgramRecord."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from corpus.errors import InputFormatError
from corpus.records import TWIGL_MODES, PassRecord, ProgramRecord
from harvest.formats import (
    MAX_CODE_BYTES,
    glsl_file_record,
    glslsandbox_item_record,
    glslsandbox_records,
    gltransition_record,
    normalise_parent,
    parse_datetime,
    parse_twigl_mode,
    record_problem,
    sniff_dialect,
    twigl_record,
)

SANDBOX = """#ifdef GL_ES
precision mediump float;
#endif
uniform float time;
uniform vec2 mouse, resolution;
void main(void) {
    vec2 p = gl_FragCoord.xy / resolution;
    gl_FragColor = vec4(p, 0.5 + 0.5 * sin(time), 1.0);
}
"""
TOY = "void mainImage(out vec4 c, in vec2 p) { c = vec4(p / iResolution.xy, 0.0, 1.0); }\n"
PLAIN = "#version 330\nout vec4 color;\nvoid main() { color = vec4(1.0, 0.0, 0.5, 1.0); }\n"
TWIGL = "o=vec4(FC.xy/r,.5+.5*sin(t),1);"
TRANSITION = "vec4 transition(vec2 uv) { return mix(getFromColor(uv), getToColor(uv), progress); }\n"


# GLSL Sandbox ---------------------------------------------------------------------------------


def test_dump_document_gives_one_record_per_version_chained_by_parent():
    doc = {
        "_id": 812,
        "versions": [
            {"code": SANDBOX, "created_at": {"$date": 1300000000000}},
            {"code": SANDBOX.replace("0.5", "0.25")},
        ],
        "parent": "/e#700.3",
        "user": "anon",
    }
    first, second = glslsandbox_records(doc, origin="dump.jsonl:7")
    assert (first.key, second.key) == ("glslsandbox:812.0", "glslsandbox:812.1")
    assert first.url == "https://glslsandbox.com/e#812.0"
    assert (first.parent, second.parent) == ("700.3", "812.0")
    assert first.extra == second.extra == {"fork_of": "700.3"}
    assert first.dialect == "glslsandbox" and first.author == "anon"
    assert [(p.name, p.type) for p in first.passes] == [("Image", "image")]
    assert first.created_at == datetime(2011, 3, 13, 7, 6, 40, tzinfo=UTC)
    assert second.origin == "dump.jsonl:7"


@pytest.mark.parametrize("raw_id", [{"$oid": "5f1e"}, "5f1e", {"$numberInt": "5f1e"}])
def test_dump_ids_in_mongodb_spellings(raw_id):
    (record,) = glslsandbox_records({"_id": raw_id, "versions": [{"code": SANDBOX}]}, origin=None)
    assert record.external_id == "5f1e.0"
    assert record.parent is None


def test_dump_document_without_id_or_versions_is_rejected():
    with pytest.raises(InputFormatError, match="no _id"):
        glslsandbox_records({"versions": [{"code": SANDBOX}]}, origin=None)
    with pytest.raises(InputFormatError, match="no versions"):
        glslsandbox_records({"_id": 3, "versions": []}, origin=None)


def test_dump_version_without_code_is_kept_for_the_importer_to_report():
    records = glslsandbox_records({"_id": 3, "versions": [{"code": SANDBOX}, {}]}, origin=None)
    assert [record_problem(r) for r in records] == [None, "empty code"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("/e#123.4", "123.4"), ("123.4", "123.4"), ("https://glslsandbox.com/e#9.0", "9.0"), ("77", "77.0"),
     (77, "77.0"), (None, None), ("", None), ("nonsense", None)],
)  # fmt: skip
def test_parent_spellings_are_normalised(raw, expected):
    assert normalise_parent(raw) == expected


def test_item_record_from_the_site():
    record = glslsandbox_item_record("55.2", {"code": SANDBOX, "user": "", "parent": "/e#40.1"}, origin="u")
    assert record.key == "glslsandbox:55.2"
    assert record.parent == "55.1"
    assert record.extra == {"fork_of": "40.1"}
    assert record.author is None
    first = glslsandbox_item_record("55.0", {"code": SANDBOX, "parent": "/e#40.1"}, origin=None)
    assert first.parent == "40.1"


def test_item_record_needs_code_and_an_id_with_version():
    with pytest.raises(InputFormatError, match="no code"):
        glslsandbox_item_record("55.0", {"code": ""}, origin=None)
    with pytest.raises(InputFormatError, match="ID.VERSION"):
        glslsandbox_item_record("55", {"code": SANDBOX}, origin=None)


# twigl --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "dialect"),
    [
        ("geekest\nTrue\nFalse\nFalse\n", "twigl-geekest-300es"),
        ("classic\nFalse\nFalse\nFalse", "twigl-classic"),
        ("geeker\nTrue\nTrue\nFalse", "twigl-geeker-mrt"),
        ("geek\nfalse\ntrue\n", "twigl-geek-mrt"),
        ("geekest (300 es)", "twigl-geekest-300es"),
        ("geeker mrt", "twigl-geeker-mrt"),
        ("Geek (MRT)", "twigl-geek-mrt"),
        ("classic 300es", "twigl-classic-300es"),
        ("geek", "twigl-geek"),
        ("twigl-geekest-300es", "twigl-geekest-300es"),
    ],
)
def test_twigl_modes(text, dialect):
    assert parse_twigl_mode(text) == dialect
    assert dialect in TWIGL_MODES


@pytest.mark.parametrize("text", ["", "hyper", "geek geeker", "geek\nmaybe\nFalse"])
def test_unknown_twigl_mode_is_rejected(text):
    with pytest.raises(InputFormatError, match="twigl mode"):
        parse_twigl_mode(text)


def test_twigl_record():
    record = twigl_record("spiral_01", TWIGL, "geekest\nFalse\nFalse\nFalse", origin="z!twigl/fragments/x")
    assert (record.key, record.dialect, record.url, record.title) == (
        "twigl:spiral_01",
        "twigl-geekest",
        None,
        "spiral_01",
    )
    assert record.image_pass().code == TWIGL


# gl-transitions -----------------------------------------------------------------------------------


def test_gltransition_record():
    obj = {
        "name": "fadeish",
        "author": "tester",
        "license": "MIT",
        "glsl": TRANSITION,
        "createdAt": "Thu, 01 Jun 2017 09:57:33 +0200",
        "updatedAt": 1500000000000,
        "paramsTypes": {"k": "float"},
        "defaultParams": {"k": 0.5},
    }
    record = gltransition_record(obj, origin="t.json:#0")
    assert record.key == "gl-transitions:fadeish"
    assert record.dialect == "gl-transition"
    assert record.licence_field == "MIT"
    assert record.url == "https://gl-transitions.com/editor/fadeish"
    assert record.created_at == datetime(2017, 6, 1, 7, 57, 33, tzinfo=UTC)
    assert record.updated_at == datetime(2017, 7, 14, 2, 40, tzinfo=UTC)
    assert record.extra == {"paramsTypes": {"k": "float"}, "defaultParams": {"k": 0.5}}
    iso = gltransition_record({**obj, "createdAt": "2018-05-01T10:00:00Z"}, origin=None)
    assert iso.created_at == datetime(2018, 5, 1, 10, tzinfo=UTC)


def test_gltransition_without_name_or_glsl_is_rejected():
    with pytest.raises(InputFormatError):
        gltransition_record({"glsl": TRANSITION}, origin=None)
    with pytest.raises(InputFormatError):
        gltransition_record({"name": "x", "glsl": " "}, origin=None)


# plain files ----------------------------------------------------------------------------------------

ISF = """/*{
    "DESCRIPTION": "Moving bars",
    "CREDIT": "tester",
    "ISFVSN": "2",
    "CATEGORIES": ["Generator", "Test"],
    "INPUTS": [{"NAME": "speed", "TYPE": "float", "DEFAULT": 1.0}]
}*/
void main() { gl_FragColor = vec4(fract(isf_FragNormCoord.x * 4.0 + TIME * speed)); }
"""


@pytest.mark.parametrize(
    ("code", "dialect"),
    [
        (ISF, "isf"),
        ("  \n" + ISF.replace('"INPUTS"', '"INPUTS": [,],\n"X"'), "isf"),
        (TOY, "shadertoy"),
        (TOY + "void main() { mainImage(gl_FragColor, gl_FragCoord.xy); }\n", "glsl"),
        (SANDBOX, "glslsandbox"),
        ("#version 300 es\n" + SANDBOX, "glsl"),
        (PLAIN, "glsl"),
        ("// void mainImage(out vec4 c, in vec2 p)\n" + PLAIN, "glsl"),
    ],
)
def test_dialect_sniffing(code, dialect):
    assert sniff_dialect(code) == dialect


def test_isf_file_header_gives_metadata():
    record = glsl_file_record(
        "gen/bars.fs", ISF, source="dir", external_id="gen/bars.fs", origin="d!gen/bars.fs"
    )
    assert (record.dialect, record.title, record.author, record.description) == (
        "isf",
        "bars",
        "tester",
        "Moving bars",
    )
    assert record.tags == ["Generator", "Test"]
    assert record.extra["isf_header"]["ISFVSN"] == "2"


def test_broken_isf_header_is_still_isf_with_what_can_be_read():
    broken = ISF.replace('"ISFVSN": "2",', '"ISFVSN": 2 2,')
    record = glsl_file_record("bars.fs", broken, source="dir", external_id="bars.fs", origin=None)
    assert record.dialect == "isf"
    assert (record.author, record.tags) == ("tester", ["Generator", "Test"])
    assert "isf_header_error" in record.extra


def test_glsl_file_record_carries_licence_and_ids():
    record = glsl_file_record(
        "a/b/wave.frag",
        SANDBOX,
        source="git",
        external_id="github.com/o/r/a/b/wave.frag",
        origin="x!a/b/wave.frag",
        repo_licence_text="MIT License",
        repo_licence_path="LICENSE",
    )
    assert record.key == "git:github.com/o/r/a/b/wave.frag"
    assert (record.title, record.dialect, record.url) == ("wave", "glslsandbox", None)
    assert (record.repo_licence_text, record.repo_licence_path) == ("MIT License", "LICENSE")
    with pytest.raises(InputFormatError, match="no code"):
        glsl_file_record("e.frag", "\n", source="dir", external_id="e.frag", origin=None)


# shared helpers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1700000000", datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
        (1700000000000, datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
        ({"$date": "2020-01-02T03:04:05Z"}, datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2020-01-02 03:04:05", datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("0", None),
        ("garbage", None),
        (True, None),
    ],
)
def test_parse_datetime(value, expected):
    assert parse_datetime(value) == expected


def test_record_problem_reports_oversized_code():
    big = "x" * (MAX_CODE_BYTES + 1)
    record = ProgramRecord("dir", "a", "glsl", [PassRecord("Image", "image", big)])
    assert (
        record_problem(record) == f"code field too large ({MAX_CODE_BYTES + 1} bytes in Image, limit 4 MiB)"
    )
    multibyte = "é" * (MAX_CODE_BYTES // 2 + 1)  # fewer characters than the limit, more bytes
    assert "too large" in record_problem(
        ProgramRecord("dir", "a", "glsl", [PassRecord("Image", "image", multibyte)])
    )
