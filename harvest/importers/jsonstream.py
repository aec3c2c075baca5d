"""Stream JSON documents out of a file in bounded memory, whatever its layout or compression.

- JSON lines: read line by line (each line at most :data:`MAX_DOCUMENT_BYTES`); a malformed or
  non-UTF-8 line is reported as ``path:LINE`` and the next line is read.
- a top-level array: read item by item with ijson; damage (a truncated file) ends the stream with
  one report naming the byte offset, after every item before it.
- one or more pretty-printed objects: read document by document with ijson, like an array.

Compressed files (:mod:`harvest.importers.compressed`) are read through their decompressor, so
locations and line numbers are those of the decompressed text; compressed data that is damaged
or cut short ends the stream with one report, after every document before it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import ijson

from harvest.importers.base import MAX_DOCUMENT_BYTES, BadRecord, utf8_problem
from harvest.importers.compressed import BytesRead, DamagedDump, open_dump

_BOM = b"\xef\xbb\xbf"
_WHITESPACE = b" \t\r\n"

Document = tuple[str, Any]


class _CountingReader:
    """A binary file that counts the bytes handed to the parser, to locate damage."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self.count = f.tell()

    def read(self, size: int = -1) -> bytes:
        data = self._f.read(size)
        self.count += len(data)
        return data


def first_byte(f: BinaryIO) -> bytes:
    """The first significant byte of ``f`` (b"" for an empty file); leaves ``f`` positioned on it."""
    offset = len(_BOM) if f.read(len(_BOM)) == _BOM else 0
    f.seek(offset)
    while chunk := f.read(4096):  # small: a cut-short compressed file is damaged further on
        stripped = chunk.lstrip(_WHITESPACE)
        if stripped:
            offset += len(chunk) - len(stripped)
            f.seek(offset)
            return stripped[:1]
        offset += len(chunk)
    return b""


def iter_json_documents(
    path: Path, label: str, bytes_read: BytesRead | None = None
) -> Iterator[Document | BadRecord]:
    """Yield ``(location, value)`` for every JSON document in ``path``, or a :class:`BadRecord`."""
    with open_dump(path, bytes_read) as f:
        try:
            start = first_byte(f)
            pretty = start == b"{" and _pretty_printed(f)
        except DamagedDump as exc:
            yield BadRecord(label, f"{exc}; nothing in it can be read")
            return
        if start == b"[":
            yield from _stream(f, label, "item")
        elif pretty:
            yield from _stream(f, label, "")
        else:
            f.seek(0)
            yield from _lines(f, label)


def _pretty_printed(f: BinaryIO) -> bool:
    """True when the file is one or more indented objects rather than JSON lines."""
    position = f.tell()
    first = f.readline(MAX_DOCUMENT_BYTES)
    second = f.readline(4096).lstrip()
    f.seek(position)
    try:
        json.loads(first)
        return False
    except ValueError:
        # A JSON line is broken on its own; an indented object goes on with a key or a brace.
        return second[:1] in (b'"', b"}")


def _stream(f: BinaryIO, label: str, prefix: str) -> Iterator[Document | BadRecord]:
    reader = _CountingReader(f)
    count = 0
    try:
        for value in ijson.items(reader, prefix, use_float=True, multiple_values=(prefix == "")):
            yield f"{label}:#{count}", value
            count += 1
    except DamagedDump as exc:
        yield BadRecord(f"{label}:#{count}", f"{exc}; nothing after it can be read")
    except (ijson.JSONError, UnicodeDecodeError) as exc:
        message = _first_line(exc)
        if "UTF8" in message or isinstance(exc, UnicodeDecodeError):
            message = "not valid UTF-8"
        what = "JSON array" if prefix else "JSON document"
        yield BadRecord(
            f"{label}:#{count}",
            f"{what} is truncated or damaged at or before byte {reader.count} "
            f"({message}); nothing after it can be read",
        )


def _first_line(exc: Exception) -> str:
    arg = exc.args[0] if exc.args else ""
    text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def _lines(f: BinaryIO, label: str) -> Iterator[Document | BadRecord]:
    line_number = 0
    while True:
        try:
            raw = f.readline(MAX_DOCUMENT_BYTES + 1)
            if not raw:
                return
            line_number += 1
            location = f"{label}:{line_number}"
            if len(raw) > MAX_DOCUMENT_BYTES and not raw.endswith(b"\n"):
                while (rest := f.readline(1 << 20)) and not rest.endswith(b"\n"):
                    pass
                yield BadRecord(location, f"line too long (over {MAX_DOCUMENT_BYTES} bytes)")
                continue
        except DamagedDump as exc:
            yield BadRecord(f"{label}:{line_number + 1}", f"{exc}; nothing after it can be read")
            return
        if line_number == 1:
            raw = raw.removeprefix(_BOM)
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield BadRecord(location, utf8_problem(exc))
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            yield BadRecord(location, f"malformed JSON at column {exc.colno}: {exc.msg}")
            continue
        yield location, value
