"""Shadertoy API / site JSON and flattened shadertoys records → ProgramRecord."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from corpus.errors import InputFormatError
from harvest.formats import shadertoy_record, shadertoys_flat_record

IMAGE = "void mainImage(out vec4 c, in vec2 p) {\n    c = texture(iChannel0, p / iResolution.xy);\n}\n"
FEEDBACK = (
    "void mainImage(out vec4 c, in vec2 p) {\n    c = 0.98 * texture(iChannel0, p / iResolution.xy);\n}\n"
)
COMMON = "float bump(float x) { return x * x; }\n"
SAMPLER = {"filter": "linear", "wrap": "clamp", "vflip": "true", "srgb": "false", "internal": "byte"}


def api_shader(**info_overrides) -> dict:
    """A three-pass shader in the API's spelling: ctype/src, numeric ids, Image listed first."""
    info = {
        "id": "tst001",
        "date": "1700000000",
        "viewed": 12,
        "name": "Feedback test",
        "username": "tester",
        "description": "a test",
        "likes": 3,
        "published": 3,
        "flags": 32,
        "tags": ["test", "feedback"],
    }
    info.update(info_overrides)
    buffer_input = {"id": 257, "src": "/media/previz/buffer00.png", "ctype": "buffer", "channel": 0}
    return {
        "ver": "0.1",
        "info": info,
        "renderpass": [
            {"inputs": [{**buffer_input, "sampler": SAMPLER}], "outputs": [{"id": 37, "channel": 0}],
             "code": IMAGE, "name": "Image", "description": "", "type": "image"},
            {"inputs": [], "outputs": [], "code": COMMON, "name": "Common", "type": "common"},
            {"inputs": [buffer_input], "outputs": [{"id": 257, "channel": 0}],
             "code": FEEDBACK, "name": "Buffer A", "type": "buffer"},
        ],
    }  # fmt: skip


def site_shader() -> dict:
    """The same program as the site spells it: type/filepath, string ids, "Buf A"."""
    buffer_input = {"id": "4dXGR8", "filepath": "/media/previz/buffer00.png", "type": "buffer", "channel": 0}
    return {
        "ver": "0.1",
        "info": {"id": "tst002", "name": "Site spelling", "username": "tester", "date": "1600000000"},
        "renderpass": [
            {"inputs": [buffer_input], "outputs": [], "code": IMAGE, "name": "Image", "type": "image"},
            {"inputs": [buffer_input], "outputs": [{"id": "4dXGR8", "channel": 0}],
             "code": FEEDBACK, "name": "Buf A", "type": "buffer"},
        ],
    }  # fmt: skip


def test_api_response_fields_are_read():
    record = shadertoy_record({"Shader": api_shader()}, origin="dump.json:1")
    assert record.key == "shadertoy:tst001"
    assert record.dialect == "shadertoy"
    assert record.title == "Feedback test"
    assert record.author == "tester"
    assert record.description == "a test"
    assert record.tags == ["test", "feedback"]
    assert record.url == "https://www.shadertoy.com/view/tst001"
    assert record.created_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert record.origin == "dump.json:1"
    assert record.extra == {"likes": 3, "viewed": 12, "published": 3, "flags": 32}
    assert record.licence_field is None


def test_passes_come_in_run_order_with_exact_code():
    record = shadertoy_record({"Shader": api_shader()}, origin=None)
    assert [(p.name, p.type) for p in record.passes] == [
        ("Common", "common"),
        ("Buffer A", "buffer"),
        ("Image", "image"),
    ]
    assert record.image_pass().code == IMAGE
    assert record.passes[1].code == FEEDBACK


def test_numeric_buffer_id_is_normalised_to_buffer_a():
    record = shadertoy_record(api_shader(), origin=None)
    image_input = record.image_pass().inputs[0]
    assert (image_input.channel, image_input.kind, image_input.ref) == (0, "buffer", "Buffer A")
    assert image_input.sampler["filter"] == "linear"


def test_site_spelling_string_ids_and_buf_a_are_normalised():
    record = shadertoy_record(site_shader(), origin=None)
    assert [p.name for p in record.passes] == ["Buffer A", "Image"]
    for p in record.passes:
        assert [(i.kind, i.ref) for i in p.inputs] == [("buffer", "Buffer A")]


def test_api_and_site_spelling_of_one_program_hash_alike():
    api = api_shader()
    api["renderpass"] = [p for p in api["renderpass"] if p["type"] != "common"]
    for p in api["renderpass"]:
        for i in p["inputs"]:
            i.pop("sampler", None)
    assert (
        shadertoy_record(api, origin=None).code_sha256
        == shadertoy_record(site_shader(), origin=None).code_sha256
    )


def test_missing_pass_type_is_inferred_from_the_name():
    shader = api_shader()
    for p in shader["renderpass"]:
        del p["type"]
    record = shadertoy_record(shader, origin=None)
    assert [(p.name, p.type) for p in record.passes] == [
        ("Common", "common"),
        ("Buffer A", "buffer"),
        ("Image", "image"),
    ]


def test_unnamed_buffer_is_named_by_its_output():
    shader = api_shader()
    shader["renderpass"][2]["name"] = ""
    assert "Buffer A" in [p.name for p in shadertoy_record(shader, origin=None).passes]


def test_missing_code_outside_image_is_empty():
    shader = api_shader()
    del shader["renderpass"][1]["code"]
    common = shadertoy_record(shader, origin=None).passes[0]
    assert (common.name, common.code) == ("Common", "")


@pytest.mark.parametrize("date", [None, "", "yesterday", "-5", "99999999999999999999", {"x": 1}])
def test_missing_or_garbage_dates_are_none(date):
    shader = api_shader(date=date)
    assert shadertoy_record(shader, origin=None).created_at is None


def test_api_error_is_a_clear_input_format_error():
    with pytest.raises(InputFormatError, match="Shadertoy API error: Shader not found"):
        shadertoy_record({"Error": "Shader not found"}, origin=None)


def test_shader_without_id_is_rejected():
    with pytest.raises(InputFormatError, match="no id"):
        shadertoy_record(api_shader(id=""), origin=None)


def test_shader_without_renderpass_is_rejected():
    shader = api_shader()
    del shader["renderpass"]
    with pytest.raises(InputFormatError, match="renderpass"):
        shadertoy_record(shader, origin=None)


@pytest.mark.parametrize("code", [None, "", "  \n"])
def test_image_pass_without_code_is_rejected(code):
    shader = api_shader()
    shader["renderpass"][0]["code"] = code
    with pytest.raises(InputFormatError, match="no Image pass with code"):
        shadertoy_record(shader, origin=None)


def test_unknown_pass_type_is_rejected():
    shader = api_shader()
    shader["renderpass"][1]["type"] = "hologram"
    with pytest.raises(InputFormatError, match="unknown type"):
        shadertoy_record(shader, origin=None)


def flat_record(**overrides) -> dict:
    record = {
        "id": "tst003",
        "name": "Flat",
        "author": "tester",
        "description": "",
        "tags": ["flat"],
        "likes": 1,
        "viewed": 2,
        "published": "Public API",
        "date": "1393353675",
        "image_code": IMAGE,
        "image_inputs": [
            {"id": "4dXGR8", "channel": 0, "ctype": "buffer", "src": "/media/previz/buffer00.png"}
        ],
        "common_code": COMMON,
        "sound_code": "",
        "sound_inputs": [],
        "buffer_a_code": FEEDBACK,
        "buffer_a_inputs": [{"id": 257, "channel": 0, "ctype": "buffer"}],
        "buffer_b_code": "",
        "buffer_b_inputs": [],
        "cube_a_code": "",
        "cube_a_inputs": [],
        "license": "CC-BY-NC-SA-3.0",
    }
    record.update(overrides)
    return record


def test_flat_record_fields_and_passes():
    record = shadertoys_flat_record(flat_record(), origin="x.jsonl:4")
    assert record.key == "shadertoy:tst003"
    assert record.licence_field == "CC-BY-NC-SA-3.0"
    assert record.description is None
    assert record.created_at == datetime(2014, 2, 25, 18, 41, 15, tzinfo=UTC)
    assert [(p.name, p.type) for p in record.passes] == [
        ("Common", "common"),
        ("Buffer A", "buffer"),
        ("Image", "image"),
    ]
    assert [(i.kind, i.ref) for i in record.image_pass().inputs] == [("buffer", "Buffer A")]
    assert [(i.kind, i.ref) for i in record.passes[1].inputs] == [("buffer", "Buffer A")]
    assert record.extra["published"] == "Public API"


def test_flat_record_without_image_code_or_id_is_rejected():
    with pytest.raises(InputFormatError, match="no Image pass"):
        shadertoys_flat_record(flat_record(image_code=""), origin=None)
    with pytest.raises(InputFormatError, match="no id"):
        shadertoys_flat_record(flat_record(id=None), origin=None)
