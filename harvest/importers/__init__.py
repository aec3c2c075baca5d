"""Importers: local dump files and folders in, a stream of program records out.

:func:`read_records` streams in bounded memory and never stops at a bad record: it yields a
:class:`BadRecord` (where and why) and goes on. It raises :class:`corpus.errors.InputFormatError`
only when nothing can be read at all: a missing path, a format it cannot tell, or a zip archive
whose directory is damaged (a damaged member is a :class:`BadRecord`); a format name it does not
know is a :class:`corpus.errors.UsageProblem`. Duplicate ids within a file are all yielded; the
catalogue decides what a repeat means.

Every record's ``origin`` says where it was read: ``path:LINE`` (JSON lines, 1-based),
``path:#INDEX`` (array items, 0-based) or ``path!member`` (zip or folder members, relative to
the imported root).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from corpus.errors import InputFormatError
from corpus.records import ProgramRecord
from harvest.importers.base import MAX_CODE_BYTES, MAX_DOCUMENT_BYTES, BadRecord
from harvest.importers.detect import (
    FORMATS,
    SHADER_SUFFIXES,
    check_format,
    detect_format,
    format_hint,
    json_documents_in,
)
from harvest.importers.directory import git_remote_repo, normalise_remote_url, read_directory
from harvest.importers.dumps import read_json_dump
from harvest.importers.shaders21k import read_shaders21k

__all__ = [
    "FORMATS",
    "MAX_CODE_BYTES",
    "MAX_DOCUMENT_BYTES",
    "SHADER_SUFFIXES",
    "BadRecord",
    "check_format",
    "detect_format",
    "git_remote_repo",
    "normalise_remote_url",
    "read_records",
]


def read_records(path: Path, fmt: str | None = None) -> Iterator[ProgramRecord | BadRecord]:
    """Stream the programs in ``path`` (format ``fmt``, detected when ``None``).

    The path, the format and a zip's directory are checked now, so that those errors raise at the
    call rather than at the first ``next()``.
    """
    path = Path(path)
    if not path.exists():
        raise InputFormatError(f"{path} does not exist", hint="check the path")
    fmt = check_format(fmt) if fmt is not None else detect_format(path)
    if fmt == "shaders21k":
        return read_shaders21k(path)
    if fmt == "dir":
        return read_directory(path)
    if path.is_dir():
        documents = json_documents_in(path)
        if not documents:
            raise InputFormatError(
                f"{path} is a folder with no .json or .jsonl files for format {fmt}", hint=format_hint()
            )
        return (item for doc in documents for item in read_json_dump(doc, fmt))
    return read_json_dump(path, fmt)
