"""Tell an import's format from the path: folder layout, file suffix, or the first record's keys."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import BinaryIO

import ijson

from corpus.errors import InputFormatError, UsageProblem
from harvest.importers.compressed import DamagedDump, compression_of, inner_suffix, open_dump
from harvest.importers.jsonstream import first_byte

FORMATS = ("shaders21k", "shadertoys-jsonl", "shadertoy-json", "glslsandbox-dump", "gl-transitions", "dir")
#: Files a ``dir`` import reads: fragment shaders only (``.vert`` and friends are skipped).
SHADER_SUFFIXES = (".frag", ".fs", ".fsh", ".glsl", ".shader")
_SHADERS21K_MARKERS = ("shadertoy", "twigl")
_SNIFF_LINES = 20
_DUMP_SUFFIXES = (".json", ".jsonl", ".ndjson")


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
    ``twigl/`` or a ``shaders_list`` file; a folder of JSON dumps (in subfolders too) and no
    shader files has the format of its first dump; other folders are ``dir``. ``.zip`` files are
    ``shaders21k``; shader files are ``dir``; JSON files, compressed or not, are told apart by
    their first record's keys.
    """
    path = Path(path)
    if not path.exists():
        raise InputFormatError(f"{path} does not exist", hint="check the path")
    if path.is_dir():
        candidates = [path, *sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))]
        for folder in candidates[:50]:
            if (folder / "shaders_list").is_file() or any((folder / m).is_dir() for m in _SHADERS21K_MARKERS):
                return "shaders21k"
        documents = dump_files_in(path)
        if documents and not _holds_shader_files(path):
            # A folder of dumps: JSON lines files, or one shader per JSON file as a site export
            # or a crawl leaves them.
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
        compression = compression_of(path)
        what = f"{compression}-compressed " if compression else ""
        raise InputFormatError(f"cannot tell the format of {what}{path}", hint=format_hint())
    return fmt


def is_dump_file(path: Path) -> bool:
    """A ``.json`` or ``.jsonl`` file, plain or compressed (``a.jsonl.gz``), not hidden."""
    return not path.name.startswith(".") and inner_suffix(path) in _DUMP_SUFFIXES


def dump_files_in(folder: Path) -> list[Path]:
    """The JSON dumps in ``folder`` and its subfolders, sorted by relative path (hidden files and
    folders skipped, symlinked folders not followed)."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root, name) for name in files if is_dump_file(Path(name))]
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def _holds_shader_files(folder: Path) -> bool:
    for _root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        if any(name.lower().endswith(SHADER_SUFFIXES) for name in files):
            return True
    return False


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
    """The top-level keys of the first object (of an array, a stream of objects, or JSON lines),
    read through any compression.

    Streams with ijson and stops as soon as the keys decide the format, so a 1 GB file costs
    little; when the first record is damaged, the next JSON lines are tried.
    """
    keys: set[str] = set()
    with open_dump(path) as f:
        _read_first_keys(_UpToDamage(f), keys)
    return keys


class _UpToDamage:
    """A dump read in small pieces that ends where its compressed data is damaged: what comes
    before the damage (a cut-short download) still tells the format."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f

    def read(self, size: int = -1) -> bytes:
        try:
            return self._f.read(min(size, 8192) if size >= 0 else 8192)
        except DamagedDump:
            return b""

    def readline(self, size: int = -1) -> bytes:
        try:
            return self._f.readline(size)
        except DamagedDump:
            return b""

    def seek(self, offset: int) -> int:
        return self._f.seek(offset)

    def tell(self) -> int:
        return self._f.tell()


def _read_first_keys(f: _UpToDamage, keys: set[str]) -> None:
    """Add the first record's keys to ``keys`` (in place, so a caller keeps what was read)."""
    start = first_byte(f)
    if start not in (b"[", b"{"):
        return
    prefix = "item" if start == b"[" else ""
    position = f.tell()
    try:
        for event_prefix, event, value in ijson.parse(f, multiple_values=True):
            if event_prefix != prefix:
                continue
            if event == "map_key":
                keys.add(value)
                if _format_of_keys(keys):
                    return
            elif event == "end_map":
                return
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
                keys.clear()
                keys.update(value)
                return
