"""Files under an imported root, as a folder or as a zip archive, read without extracting.

Both list their files as sorted POSIX paths relative to the root and read one file at a time with
a size limit, so a Shaders21k folder and its ``.zip`` import identically.
"""

from __future__ import annotations

import os
import re
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

from corpus.errors import InputFormatError
from harvest.importers.base import BadRecord


class UnreadableMember(Exception):
    """One file of the tree cannot be read; the reason is the message."""


def walk_files(root: Path, label: str, wanted: Callable[[str], bool]) -> list[str | BadRecord]:
    """Relative POSIX paths of the wanted files under ``root``, sorted.

    Hidden folders (``.git`` included) are skipped and symlinked folders are not followed (their
    targets inside the root are walked anyway); a symlinked file is used only when it points
    inside the root, else it is reported.
    """
    root_real = root.resolve()
    found: list[str | BadRecord] = []
    for folder, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            full = Path(folder, name)
            rel = full.relative_to(root).as_posix()
            if not wanted(rel):
                continue
            if full.is_symlink() and not full.resolve().is_relative_to(root_real):
                found.append(BadRecord(f"{label}!{rel}", "symlink to a file outside the imported folder"))
            elif full.is_symlink() and not full.exists():
                found.append(BadRecord(f"{label}!{rel}", "broken symlink"))
            else:
                found.append(rel)
    return sorted(found, key=lambda item: item.location if isinstance(item, BadRecord) else f"{label}!{item}")


class FolderTree:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.label = str(root)

    def members(self) -> list[str | BadRecord]:
        return walk_files(self.root, self.label, lambda rel: True)

    def read(self, member: str, limit: int) -> bytes:
        path = self.root / member
        try:
            size = path.stat().st_size
            if size > limit:
                raise UnreadableMember(f"file too large ({size} bytes, limit {limit // 2**20} MiB)")
            return path.read_bytes()
        except OSError as exc:
            raise UnreadableMember(f"cannot read file ({exc.strerror or exc})") from exc


class ZipTree:
    """A zip archive; a damaged archive raises :class:`InputFormatError` when opened, a damaged
    member is reported by :meth:`read` and the others are still read."""

    def __init__(self, path: Path) -> None:
        self.label = str(path)
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise InputFormatError(
                f"{path} is not a readable zip archive ({exc}); it may be truncated or damaged",
                hint="copy or download it again, or unpack it and import the folder",
            ) from exc

    def close(self) -> None:
        self._zip.close()

    def members(self) -> list[str | BadRecord]:
        found: list[str | BadRecord] = []
        for info in self._zip.infolist():
            if info.is_dir():
                continue
            if _unsafe(info.filename):
                found.append(BadRecord(f"{self.label}!{info.filename}", "unsafe member name: skipped"))
            else:
                found.append(info.filename)
        return sorted(
            found, key=lambda m: m.location[len(self.label) + 1 :] if isinstance(m, BadRecord) else m
        )

    def read(self, member: str, limit: int) -> bytes:
        try:
            info = self._zip.getinfo(member)
            if info.file_size > limit:
                raise UnreadableMember(
                    f"member too large ({info.file_size} bytes, limit {limit // 2**20} MiB)"
                )
            with self._zip.open(info) as f:
                data = f.read(limit + 1)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError) as exc:
            raise UnreadableMember(f"cannot read member ({exc})") from exc
        if len(data) > limit:
            raise UnreadableMember(f"member too large (over {limit // 2**20} MiB)")
        return data


def _unsafe(name: str) -> bool:
    """A member that would escape the folder if it were extracted (we never extract)."""
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "\\")) or ".." in parts or bool(re.match(r"[A-Za-z]:", name))
