"""Shaders21k-style collections, as a folder or its ``.zip``.

``shadertoy/**/<id>.fragment`` holds one Shadertoy JSON (an API response or a bare shader);
``twigl/fragments/<name>.fragment`` holds twigl code whose mode is in ``twigl/modes/<name>.fragment``.
The tree is walked in sorted order (``shaders_list`` is not needed); these folders may also sit
one or more levels down (``shader_codes/shadertoy/…``). Other files are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from corpus.records import ProgramRecord
from harvest.formats import shadertoy_record, twigl_record
from harvest.importers.base import MAX_DOCUMENT_BYTES, BadRecord, checked, utf8_problem
from harvest.importers.tree import FolderTree, UnreadableMember, ZipTree

_SUFFIX = ".fragment"


def read_shaders21k(path: Path) -> Iterator[ProgramRecord | BadRecord]:
    """Every program of a Shaders21k folder or zip; a zip that cannot be opened raises
    :class:`corpus.errors.InputFormatError` here, before any record."""
    tree = ZipTree(path) if path.is_file() else FolderTree(path)
    return _records(tree)


def _records(tree: FolderTree | ZipTree) -> Iterator[ProgramRecord | BadRecord]:
    try:
        members = tree.members()
        names = {m for m in members if isinstance(m, str)}
        for member in members:
            if isinstance(member, BadRecord):
                yield member
                continue
            parts = member.split("/")
            if not parts[-1].endswith(_SUFFIX) or len(parts) < 2:
                continue
            location = f"{tree.label}!{member}"
            if "shadertoy" in parts[:-1]:
                yield from _shadertoy(tree, member, location)
            elif len(parts) >= 3 and parts[-3:-1] == ["twigl", "fragments"]:
                mode_member = "/".join([*parts[:-2], "modes", parts[-1]])
                yield from _twigl(tree, member, mode_member if mode_member in names else None, location)
    finally:
        if isinstance(tree, ZipTree):
            tree.close()


def _text(tree: FolderTree | ZipTree, member: str) -> str:
    data = tree.read(member, MAX_DOCUMENT_BYTES)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableMember(utf8_problem(exc)) from exc


def _shadertoy(tree: FolderTree | ZipTree, member: str, location: str) -> Iterator[ProgramRecord | BadRecord]:
    try:
        value = json.loads(_text(tree, member))
    except UnreadableMember as exc:
        yield BadRecord(location, str(exc))
        return
    except json.JSONDecodeError as exc:
        yield BadRecord(location, f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")
        return
    yield from checked(location, lambda: shadertoy_record(value, origin=location))


def _twigl(
    tree: FolderTree | ZipTree, member: str, mode_member: str | None, location: str
) -> Iterator[ProgramRecord | BadRecord]:
    name = member.rsplit("/", 1)[-1][: -len(_SUFFIX)]
    if mode_member is None:
        yield BadRecord(location, f"no mode file twigl/modes/{name}{_SUFFIX}")
        return
    try:
        code, mode_text = _text(tree, member), _text(tree, mode_member)
    except UnreadableMember as exc:
        yield BadRecord(location, str(exc))
        return
    yield from checked(location, lambda: twigl_record(name, code, mode_text, origin=location))
