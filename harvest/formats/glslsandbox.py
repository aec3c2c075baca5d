"""GLSL Sandbox programs: database dump documents and the site's ``GET /item/ID.VERSION``.

Every version of an effect is its own program, ``ID.VERSION``. Parents form a chain:

- version 0's parent is the effect it was forked from (the document's ``parent``), if any;
- version N > 0's parent is version N-1 of the same effect (the version it was saved over).

The fork source is also kept in ``extra["fork_of"]`` on every version, so it is never lost.
"""

from __future__ import annotations

import re
from typing import Any

from corpus.errors import InputFormatError
from corpus.records import ProgramRecord
from harvest.formats.common import image_pass, parse_datetime, required_code, text_or_none

_PARENT = re.compile(r"(?:^|[#/])(\d+)(?:\.(\d+))?$")


def glslsandbox_url(external_id: str) -> str:
    return f"https://glslsandbox.com/e#{external_id}"


def normalise_parent(value: Any) -> str | None:
    """``"/e#123.4"``, ``"https://glslsandbox.com/e#123.4"``, ``"123.4"`` → ``"123.4"``; a bare
    effect id (``123``) means its version 0; anything else is ``None``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value}.0"
    if not isinstance(value, str):
        return None
    match = _PARENT.search(value.strip())
    if not match:
        return None
    return f"{match.group(1)}.{match.group(2) or 0}"


def glslsandbox_records(obj: dict[str, Any], *, origin: str | None) -> list[ProgramRecord]:
    """One record per version of a dump document ``{_id, versions: [{code, created_at?}], parent, user}``.

    A version without code becomes a record with empty code (callers report it with
    :func:`harvest.formats.record_problem`) so that one bad version does not hide the others.
    """
    if not isinstance(obj, dict):
        raise InputFormatError(f"a GLSL Sandbox document is a JSON object, not {type(obj).__name__}")
    effect_id = _effect_id(obj.get("_id"))
    versions = obj.get("versions")
    if not isinstance(versions, list) or not versions:
        raise InputFormatError(f"GLSL Sandbox effect {effect_id} has no versions")
    fork_of = normalise_parent(obj.get("parent"))
    records = []
    for index, version in enumerate(versions):
        version = version if isinstance(version, dict) else {"code": version}
        created = parse_datetime(version.get("created_at"))
        if created is None and index == 0:
            created = parse_datetime(obj.get("created_at"))
        code = version.get("code")
        records.append(
            _record(
                f"{effect_id}.{index}",
                code if isinstance(code, str) else "",
                user=obj.get("user"),
                fork_of=fork_of,
                origin=origin,
            )
        )
        records[-1].created_at = created
    return records


def glslsandbox_item_record(external_id: str, obj: dict[str, Any], *, origin: str | None) -> ProgramRecord:
    """Parse the site's ``GET /item/ID.VERSION`` answer ``{"code", "user", "parent"}``."""
    if not re.fullmatch(r"\d+\.\d+", external_id or ""):
        raise InputFormatError(f"{external_id!r} is not a GLSL Sandbox id; expected ID.VERSION, e.g. 123.0")
    if not isinstance(obj, dict):
        raise InputFormatError(f"GLSL Sandbox item {external_id} is not a JSON object")
    code = required_code(obj.get("code"), f"GLSL Sandbox item {external_id}")
    return _record(
        external_id, code, user=obj.get("user"), fork_of=normalise_parent(obj.get("parent")), origin=origin
    )


def _record(
    external_id: str, code: str, *, user: Any, fork_of: str | None, origin: str | None
) -> ProgramRecord:
    effect_id, _, version = external_id.rpartition(".")
    parent = fork_of if version == "0" else f"{effect_id}.{int(version) - 1}"
    return ProgramRecord(
        source="glslsandbox",
        external_id=external_id,
        dialect="glslsandbox",
        passes=image_pass(code),
        author=text_or_none(user),
        url=glslsandbox_url(external_id),
        parent=parent,
        origin=origin,
        extra={"fork_of": fork_of} if fork_of else {},
    )


def _effect_id(raw: Any) -> str:
    """The effect id of a dump document: a number, a string, or MongoDB's ``{"$oid"|"$numberInt": …}``."""
    if isinstance(raw, dict):
        raw = next((raw[k] for k in ("$oid", "$numberInt", "$numberLong") if k in raw), None)
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    text = text_or_none(raw) if not isinstance(raw, bool) else None
    if text is None:
        raise InputFormatError("GLSL Sandbox document has no _id")
    if "." in text or "/" in text or "#" in text:
        raise InputFormatError(f"GLSL Sandbox document has an odd _id {text!r}")
    return text
