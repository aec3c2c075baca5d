"""JSON dumps: Shadertoy JSON, flattened shadertoys records, GLSL Sandbox dumps, gl-transitions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from corpus.records import ProgramRecord
from harvest.formats import (
    glslsandbox_records,
    gltransition_record,
    shadertoy_record,
    shadertoys_flat_record,
)
from harvest.importers.base import BadRecord, checked
from harvest.importers.compressed import BytesRead
from harvest.importers.jsonstream import iter_json_documents

Parser = Callable[..., ProgramRecord | list[ProgramRecord]]

PARSERS: dict[str, Parser] = {
    "shadertoy-json": shadertoy_record,
    "shadertoys-jsonl": shadertoys_flat_record,
    "glslsandbox-dump": glslsandbox_records,
    "gl-transitions": gltransition_record,
}


def read_json_dump(
    path: Path, fmt: str, *, label: str | None = None, bytes_read: BytesRead | None = None
) -> Iterator[ProgramRecord | BadRecord]:
    """Every program in a JSON dump of format ``fmt`` (JSON lines, an array, or documents),
    plain or compressed; ``label`` names the file in locations (default: its path)."""
    parse = PARSERS[fmt]
    for item in iter_json_documents(path, label or str(path), bytes_read):
        if isinstance(item, BadRecord):
            yield item
            continue
        location, value = item
        yield from checked(location, _bind(parse, value, location))


def _bind(parse: Parser, value: Any, location: str) -> Callable[[], ProgramRecord | list[ProgramRecord]]:
    return lambda: parse(value, origin=location)
