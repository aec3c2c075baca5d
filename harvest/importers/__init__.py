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
from harvest.importers.compressed import BytesRead, compression_of
from harvest.importers.detect import (
    FORMATS,
    SHADER_SUFFIXES,
    check_format,
    detect_format,
    dump_files_in,
    format_hint,
    is_dump_file,
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
    "BytesRead",
    "check_format",
    "compression_of",
    "detect_format",
    "dump_files_in",
    "dump_size",
    "git_remote_repo",
    "is_dump_file",
    "normalise_remote_url",
    "read_records",
]


def read_records(
    path: Path, fmt: str | None = None, *, label: str | None = None, bytes_read: BytesRead | None = None
) -> Iterator[ProgramRecord | BadRecord]:
    """Stream the programs in ``path`` (format ``fmt``, detected when ``None``).

    The path, the format and a zip's directory are checked now, so that those errors raise at the
    call rather than at the first ``next()``. ``label`` stands for the path in each record's
    origin (a git crawl names the repository and commit, not its cache folder); ``bytes_read``
    follows how far JSON dumps have been read (see :func:`dump_size` for the total).
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
        documents = dump_files_in(path)
        if not documents:
            raise InputFormatError(
                f"{path} is a folder with no JSON dumps (.json, .jsonl, also compressed) for format {fmt}",
                hint=format_hint(),
            )
        labels = [f"{label}!{d.relative_to(path).as_posix()}" if label else str(d) for d in documents]
        return (
            item
            for doc, doc_label in zip(documents, labels, strict=True)
            for item in read_json_dump(doc, fmt, label=doc_label, bytes_read=bytes_read)
        )
    return read_json_dump(path, fmt, label=label, bytes_read=bytes_read)


def dump_size(path: Path, fmt: str) -> int | None:
    """The bytes on disk that :func:`read_records` reads as JSON dumps (a progress bar's total:
    compressed bytes for compressed files), or ``None`` for formats read file by file."""
    path = Path(path)
    if fmt in ("shaders21k", "dir"):
        return None
    documents = dump_files_in(path) if path.is_dir() else [path]
    return sum(d.stat().st_size for d in documents)
