"""A shader file from a directory or repository, with its dialect sniffed from the code.

In order, the first rule that matches wins:

- ``isf``: the file opens (after whitespace) with an ISF ``/*{ … }*/`` JSON header; a header
  that does not parse is still ISF (the metadata is then read from it field by field);
- ``shadertoy``: it defines ``mainImage(`` and no ``main(`` of its own;
- ``glslsandbox``: it writes ``gl_FragColor``, declares uniforms ``time`` and ``resolution``, and
  has no ``#version 3xx``;
- ``glsl`` otherwise.
"""

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath
from typing import Any

from corpus.glsl import strip_comments
from corpus.records import ProgramRecord
from harvest.formats.common import image_pass, required_code, tag_list, text_or_none

_ISF_START = re.compile(r"\A\ufeff?\s*/\*\s*\{")
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


def sniff_dialect(code: str) -> str:
    """The dialect of one shader file's code (see the module docstring for the rules)."""
    if _ISF_START.match(code):
        return "isf"
    bare = strip_comments(code)
    if re.search(r"\bmainImage\s*\(", bare) and not re.search(r"\bvoid\s+main\s*\(", bare):
        return "shadertoy"
    if (
        "gl_FragColor" in bare
        and re.search(r"\buniform\b[^;]{0,200}?\btime\b", bare)
        and re.search(r"\buniform\b[^;]{0,200}?\bresolution\b", bare)
        and not re.search(r"#\s*version\s+3", bare)
    ):
        return "glslsandbox"
    return "glsl"


def parse_isf_header(code: str) -> tuple[dict[str, Any] | None, str | None]:
    """The ISF JSON header as a dict, or ``(None, why)`` when it does not parse."""
    start = code.index("{", code.index("/*"))
    end = code.find("*/", start)
    text = code[start:end] if end >= 0 else code[start:]
    try:
        header = json.loads(text)
    except ValueError as exc:
        try:
            header = json.loads(_TRAILING_COMMA.sub(r"\1", text))
        except ValueError:
            return None, f"ISF header is not valid JSON: {exc}"
    return (header, None) if isinstance(header, dict) else (None, "ISF header is not a JSON object")


def _isf_field(text: str, key: str) -> Any:
    """One field of a broken ISF header: a string, or a list of strings."""
    match = re.search(rf'"{key}"\s*:\s*("(?:[^"\\]|\\.)*"|\[[^\]]*\])', text)
    if not match:
        return None
    value = match.group(1)
    if value.startswith("["):
        return re.findall(r'"((?:[^"\\]|\\.)*)"', value)
    return value[1:-1].replace('\\"', '"')


def glsl_file_record(
    relpath: str,
    code: str,
    *,
    source: str,
    external_id: str,
    origin: str | None,
    repo_licence_text: str | None = None,
    repo_licence_path: str | None = None,
) -> ProgramRecord:
    """A single-pass program from one file; its title is the file's stem."""
    code = required_code(code, relpath)
    dialect = sniff_dialect(code)
    description = author = None
    tags: list[str] = []
    extra: dict[str, Any] = {"path": relpath}
    if dialect == "isf":
        header, error = parse_isf_header(code)
        fields = header if header is not None else {}
        if header is None:
            head = code[: code.find("*/") if "*/" in code else len(code)]
            fields = {k: _isf_field(head, k) for k in ("DESCRIPTION", "CREDIT", "CATEGORIES")}
            extra["isf_header_error"] = error
        else:
            extra["isf_header"] = header
        description = text_or_none(fields.get("DESCRIPTION"))
        author = text_or_none(fields.get("CREDIT"))
        tags = tag_list(fields.get("CATEGORIES"))
    return ProgramRecord(
        source=source,
        external_id=external_id,
        dialect=dialect,
        passes=image_pass(code),
        title=PurePosixPath(relpath).stem,
        author=author,
        description=description,
        tags=tags,
        repo_licence_text=repo_licence_text,
        repo_licence_path=repo_licence_path,
        origin=origin,
        extra=extra,
    )
