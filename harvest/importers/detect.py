"""Tell an import's format from the path: folder layout, file suffix, or the first record's keys."""

from __future__ import annotations

import json
from pathlib import Path

import ijson

from corpus.errors import InputFormatError, UsageProblem
from harvest.importers.jsonstream import first_byte

FORMATS = ("shaders21k", "shadertoys-jsonl", "shadertoy-json", "glslsandbox-dump", "gl-transitions", "dir")
#: Files a ``dir`` import reads: fragment shaders only (``.vert`` and friends are skipped).
SHADER_SUFFIXES = (".frag", ".fs", ".fsh", ".glsl", ".shader")
_SHADERS21K_MARKERS = ("shadertoy", "twigl")
_SNIFF_LINES = 20


def format_hint() -> str:
    return f"pass --format with one of {', '.join(FORMATS)}"


def check_format(fmt: str) -> str:
    """``fmt`` when it is an import format; else a usage error (exit 2) that lists them."""
    if fmt not in FORMATS:
        raise UsageProblem(
            f"unknown import format {fmt!r}",
            hint=f"use one of: {', '.join(FORMATS)} (harvest formats describes them), or leave --format out",
        )
    return fmt


def detect_format(path: Path) -> str:
    """The format of an import path; raises :class:`InputFormatError` when it cannot tell.

    Folders are ``shaders21k`` when they (or a folder just inside them) hold ``shadertoy/`` or
    ``twigl/`` or a ``shaders_list`` file, else ``dir``; ``.zip`` files are ``shaders21k``;
    shader files are ``dir``; JSON files are told apart by their first record's keys.
    """
    path = Path(path)
    if not path.exists():
        raise InputFormatError(f"{path} does not exist", hint="check the path")
    if path.is_dir():
        candidates = [path, *sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))]
        for folder in candidates[:50]:
            if (folder / "shaders_list").is_file() or any((folder / m).is_dir() for m in _SHADERS21K_MARKERS):
                return "shaders21k"
        documents = json_documents_in(path)
        if documents and not any(p.suffix.lower() in SHADER_SUFFIXES for p in path.rglob("*") if p.is_file()):
            # A folder of JSON files (one shader each, as a site export or a crawl leaves them).
            fmt = _format_of_keys(_first_record_keys(documents[0]))
            if fmt is not None:
                return fmt
        return "dir"
    suffix = path.suffix.lower()
    if suffix == ".zip":
        return "shaders21k"
    if suffix in SHADER_SUFFIXES:
        return "dir"
    fmt = _format_of_keys(_first_record_keys(path))
    if fmt is None:
        raise InputFormatError(f"cannot tell the format of {path}", hint=format_hint())
    return fmt


def json_documents_in(folder: Path) -> list[Path]:
    """The ``.json`` and ``.jsonl`` files directly in ``folder``, sorted (hidden ones skipped)."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in (".json", ".jsonl")
    )


def _format_of_keys(keys: set[str]) -> str | None:
    if keys & {"Shader", "Error", "renderpass", "ver"}:
        return "shadertoy-json"
    if "image_code" in keys:
        return "shadertoys-jsonl"
    if {"_id", "versions"} <= keys:
        return "glslsandbox-dump"
    if {"glsl", "name"} <= keys:
        return "gl-transitions"
    return None


def _first_record_keys(path: Path) -> set[str]:
    """The top-level keys of the first object (of an array, a stream of objects, or JSON lines).

    Streams with ijson and stops as soon as the keys decide the format, so a 1 GB file costs
    little; when the first record is damaged, the next JSON lines are tried.
    """
    keys: set[str] = set()
    with path.open("rb") as f:
        start = first_byte(f)
        if start not in (b"[", b"{"):
            return keys
        prefix = "item" if start == b"[" else ""
        position = f.tell()
        try:
            for event_prefix, event, value in ijson.parse(f, multiple_values=True):
                if event_prefix != prefix:
                    continue
                if event == "map_key":
                    keys.add(value)
                    if _format_of_keys(keys):
                        return keys
                elif event == "end_map":
                    return keys
        except (ijson.JSONError, UnicodeDecodeError):
            pass
        if start == b"{":
            f.seek(position)
            for _ in range(_SNIFF_LINES):
                line = f.readline(1 << 24)
                try:
                    value = json.loads(line)
                except ValueError:
                    continue
                if isinstance(value, dict) and _format_of_keys(set(value)):
                    return set(value)
    return keys
