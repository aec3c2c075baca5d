"""Dumps as they come: plain or compressed (``.gz``, ``.bz2``, ``.xz``, ``.zst``), read streaming.

:func:`open_dump` gives the decompressed bytes as a binary file whatever the compression (told
by the suffix, else by the first bytes), so the JSON readers and format detection never see the
difference. Damaged or cut-short compressed data raises :class:`DamagedDump` with a plain
message, never a decompressor's own exception. :class:`BytesRead` tells how far an import has
read its files as stored (compressed bytes), for a progress bar with a known total.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

#: Suffix -> compression name, as users and tools write them.
SUFFIXES = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bzip2", ".xz": "xz", ".zst": "zstd", ".zstd": "zstd"}
_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
_DISCARD_CHUNK = 1 << 20


class DamagedDump(Exception):
    """Compressed data that cannot be decompressed (damaged, cut short, or not that compression)."""


def compression_of(path: Path) -> str | None:
    """``gzip``, ``bzip2``, ``xz``, ``zstd`` or ``None``: by the suffix, else by the first bytes
    (a dump saved without its suffix, or renamed)."""
    kind = SUFFIXES.get(Path(path).suffix.lower())
    if kind is not None:
        return kind
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return None
    return next((name for magic, name in _MAGIC if head.startswith(magic)), None)


def inner_suffix(path: Path) -> str:
    """The suffix that says what a dump holds: ``a.jsonl.gz`` → ``.jsonl``, ``a.json`` → ``.json``."""
    path = Path(path)
    if path.suffix.lower() in SUFFIXES:
        path = path.with_suffix("")
    return path.suffix.lower()


class BytesRead:
    """How far an import has read its dump files, in bytes as stored on disk: compressed bytes
    for a compressed file, so that the file sizes are the total."""

    def __init__(self) -> None:
        self._finished = 0
        self._current: BinaryIO | None = None

    def reading(self, raw: BinaryIO) -> None:
        self._current = raw

    def finished(self, size: int) -> None:
        self._finished += size
        self._current = None

    @property
    def count(self) -> int:
        current = 0
        if self._current is not None and not self._current.closed:
            with contextlib.suppress(OSError, ValueError):
                current = self._current.tell()
        return self._finished + current


@contextlib.contextmanager
def open_dump(path: Path, bytes_read: BytesRead | None = None) -> Iterator[BinaryIO]:
    """The decompressed content of ``path`` as a readable, seekable binary file."""
    path = Path(path)
    kind = compression_of(path)
    raw = open(path, "rb")  # closed below, after the decompressor on top of it
    try:
        if bytes_read is not None:
            bytes_read.reading(raw)
        yield raw if kind is None else _Decompressed(path, kind, raw)
    finally:
        raw.close()
        if bytes_read is not None:
            bytes_read.finished(path.stat().st_size)


def _decompressor(kind: str, raw: BinaryIO) -> BinaryIO:
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if kind == "bzip2":
        return bz2.BZ2File(raw, mode="rb")
    if kind == "xz":
        return lzma.LZMAFile(raw, mode="rb")
    try:
        import zstandard
    except ImportError as exc:  # a dependency, but say what to do if it went missing
        raise DamagedDump("reading .zst dumps needs the zstandard package: pip install zstandard") from exc
    reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, closefd=False)
    return io.BufferedReader(reader, buffer_size=1 << 16)


def _errors() -> tuple[type[BaseException], ...]:
    errors: tuple[type[BaseException], ...] = (EOFError, OSError, zlib.error, lzma.LZMAError)
    with contextlib.suppress(ImportError):
        import zstandard

        errors += (zstandard.ZstdError,)
    return errors


class _Decompressed(io.RawIOBase):
    """A decompressed stream with the decompressors' errors as :class:`DamagedDump`; it seeks
    backwards by starting again (readers look back only near the start, to sniff the layout)."""

    def __init__(self, path: Path, kind: str, raw: BinaryIO) -> None:
        super().__init__()
        self._path, self._kind, self._raw = path, kind, raw
        self._errors = _errors()
        self._stream = self._guard(lambda: _decompressor(kind, raw))

    def _guard(self, call: Callable):
        try:
            return call()
        except DamagedDump:
            raise
        except self._errors as exc:
            raise DamagedDump(
                f"{self._path}: the {self._kind} data is damaged or cut short ({exc or type(exc).__name__})"
            ) from exc

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._guard(lambda: self._stream.read(size))

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readline(self, size: int = -1) -> bytes:
        return self._guard(lambda: self._stream.readline(size))

    def tell(self) -> int:
        return self._stream.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence != io.SEEK_SET:
            raise io.UnsupportedOperation("a decompressed dump seeks from its start only")
        if offset < self.tell():
            self._stream.close()
            self._raw.seek(0)
            self._stream = self._guard(lambda: _decompressor(self._kind, self._raw))
        while (left := offset - self.tell()) > 0 and self.read(min(left, _DISCARD_CHUNK)):
            pass
        return self.tell()

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
        super().close()
