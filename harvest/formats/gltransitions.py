"""gl-transitions programs: one entry of the collection's JSON (``name, author, license, glsl``).

A transition is a ``vec4 transition(vec2 uv)`` body (dialect ``gl-transition``), with its
parameter types and defaults kept in ``extra`` for the renderer.
"""

from __future__ import annotations

from typing import Any

from corpus.errors import InputFormatError
from corpus.records import ProgramRecord
from harvest.formats.common import image_pass, parse_datetime, required_code, required_id, text_or_none

_EXTRA_KEYS = ("paramsTypes", "defaultParams")


def gltransition_record(obj: dict[str, Any], *, origin: str | None) -> ProgramRecord:
    """Parse one transition; ``license`` becomes :attr:`ProgramRecord.licence_field`."""
    if not isinstance(obj, dict):
        raise InputFormatError(f"a gl-transition is a JSON object, not {type(obj).__name__}")
    name = required_id(obj.get("name"), "gl-transition")
    return ProgramRecord(
        source="gl-transitions",
        external_id=name,
        dialect="gl-transition",
        passes=image_pass(required_code(obj.get("glsl"), f"gl-transition {name}")),
        title=name,
        author=text_or_none(obj.get("author")),
        url=f"https://gl-transitions.com/editor/{name}",
        created_at=parse_datetime(obj.get("createdAt")),
        updated_at=parse_datetime(obj.get("updatedAt")),
        licence_field=text_or_none(obj.get("license")),
        origin=origin,
        extra={k: obj[k] for k in _EXTRA_KEYS if k in obj},
    )
