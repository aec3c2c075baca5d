"""Shadertoy programs: the API/site JSON (``{"Shader": {ver, info, renderpass}}`` or bare) and the
flattened records of the shadertoys dataset (``id, name, image_code, buffer_a_code …``).

Passes are returned in the order Shadertoy runs them (Common, Buffer A-D, Cube A, Image, Sound),
whatever order the document listed them in, so that the API, the site and a dump of the same
program give the same :attr:`ProgramRecord.code_sha256`.
"""

from __future__ import annotations

from typing import Any

from corpus.errors import InputFormatError
from corpus.records import (
    PASS_TYPES,
    InputRecord,
    PassRecord,
    ProgramRecord,
    canonical_pass_name,
    normalise_input,
)
from harvest.formats.common import parse_datetime, required_id, tag_list, text_or_none

_TYPE_BY_NAME = {"Image": "image", "Common": "common", "Sound": "sound", "Cube A": "cubemap"}
_TYPE_ALIASES = {"cube": "cubemap", "buf": "buffer"}
_EXTRA_KEYS = ("likes", "viewed", "published", "flags")
#: Flattened-record key prefixes, in run order, with the pass each one holds.
_FLAT_PASSES = (
    ("common", "Common", "common"),
    ("buffer_a", "Buffer A", "buffer"),
    ("buffer_b", "Buffer B", "buffer"),
    ("buffer_c", "Buffer C", "buffer"),
    ("buffer_d", "Buffer D", "buffer"),
    ("cube_a", "Cube A", "cubemap"),
    ("image", "Image", "image"),
    ("sound", "Sound", "sound"),
)


def shadertoy_url(shader_id: str) -> str:
    return f"https://www.shadertoy.com/view/{shader_id}"


def shadertoy_record(obj: dict[str, Any], *, origin: str | None) -> ProgramRecord:
    """Parse one API response ``{"Shader": …}`` or bare shader ``{ver, info, renderpass}``.

    Raises :class:`InputFormatError` for an API ``{"Error": …}``, a shader without an id, or one
    without an Image pass with code.
    """
    if not isinstance(obj, dict):
        raise InputFormatError(f"a Shadertoy shader is a JSON object, not {type(obj).__name__}")
    if "Error" in obj:
        raise InputFormatError(f"Shadertoy API error: {obj['Error']}")
    shader = obj.get("Shader", obj)
    info = shader.get("info") if isinstance(shader, dict) else None
    if not isinstance(info, dict):
        raise InputFormatError("Shadertoy shader has no info object")
    shader_id = required_id(info.get("id"), "Shadertoy shader")
    raw_passes = shader.get("renderpass")
    if not isinstance(raw_passes, list) or not raw_passes:
        raise InputFormatError(f"Shadertoy shader {shader_id} has no renderpass list")
    passes = _ordered([_pass(raw, i, shader_id) for i, raw in enumerate(raw_passes)], shader_id)
    return ProgramRecord(
        source="shadertoy",
        external_id=shader_id,
        dialect="shadertoy",
        passes=passes,
        title=text_or_none(info.get("name")),
        author=text_or_none(info.get("username")),
        description=text_or_none(info.get("description")),
        tags=tag_list(info.get("tags")),
        url=shadertoy_url(shader_id),
        created_at=parse_datetime(info.get("date")),
        origin=origin,
        extra={k: info[k] for k in _EXTRA_KEYS if k in info},
    )


def shadertoys_flat_record(obj: dict[str, Any], *, origin: str | None) -> ProgramRecord:
    """Parse one flattened shadertoys-dataset record; an empty ``*_code`` means no such pass."""
    if not isinstance(obj, dict):
        raise InputFormatError(f"a shadertoys record is a JSON object, not {type(obj).__name__}")
    shader_id = required_id(obj.get("id"), "shadertoys record")
    passes = []
    for prefix, name, pass_type in _FLAT_PASSES:
        code = obj.get(f"{prefix}_code")
        if isinstance(code, str) and code.strip():
            raw_inputs = obj.get(f"{prefix}_inputs")
            passes.append(PassRecord(name, pass_type, code, _inputs(raw_inputs)))
    _ordered(passes, shader_id)
    return ProgramRecord(
        source="shadertoy",
        external_id=shader_id,
        dialect="shadertoy",
        passes=passes,
        title=text_or_none(obj.get("name")),
        author=text_or_none(obj.get("author")),
        description=text_or_none(obj.get("description")),
        tags=tag_list(obj.get("tags")),
        url=shadertoy_url(shader_id),
        created_at=parse_datetime(obj.get("date")),
        licence_field=text_or_none(obj.get("license")),
        origin=origin,
        extra={k: obj[k] for k in _EXTRA_KEYS if k in obj},
    )


def _pass(raw: Any, index: int, shader_id: str) -> PassRecord:
    if not isinstance(raw, dict):
        raise InputFormatError(f"Shadertoy shader {shader_id}: pass {index} is not an object")
    pass_type = str(raw.get("type") or "").strip().lower()
    pass_type = _TYPE_ALIASES.get(pass_type, pass_type)
    name = canonical_pass_name(raw.get("name"), pass_type or None)
    if pass_type == "buffer" and not name.startswith("Buffer "):
        # A buffer without a usable name is named by the output it writes (257 is Buffer A).
        outputs = raw.get("outputs") if isinstance(raw.get("outputs"), list) else []
        ids = [o["id"] for o in outputs if isinstance(o, dict) and "id" in o]
        ref = normalise_input({"ctype": "buffer", "id": ids[0]}).ref if ids else None
        name = ref or name
    if not pass_type:
        pass_type = "buffer" if name.startswith("Buffer ") else _TYPE_BY_NAME.get(name, "")
    if pass_type not in PASS_TYPES:
        raise InputFormatError(f"Shadertoy shader {shader_id}: pass {index} ({name}) has unknown type")
    code = raw.get("code")
    return PassRecord(name, pass_type, code if isinstance(code, str) else "", _inputs(raw.get("inputs")))


def _inputs(raw_inputs: Any) -> list[InputRecord]:
    if not isinstance(raw_inputs, list):
        return []
    return [normalise_input(raw, i) for i, raw in enumerate(raw_inputs) if isinstance(raw, dict)]


def _ordered(passes: list[PassRecord], shader_id: str) -> list[PassRecord]:
    names = [p.name for p in passes]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputFormatError(f"Shadertoy shader {shader_id} has two passes named {duplicates[0]}")
    images = [p for p in passes if p.type == "image"]
    if len(images) != 1 or not images[0].code.strip():
        raise InputFormatError(f"Shadertoy shader {shader_id} has no Image pass with code")
    return sorted(passes, key=lambda p: (PASS_TYPES.index(p.type), p.name))
