"""Output paths given on a command line, and files written whole or not at all.

A folder that cannot be one (a file, or a path under a file), or a picture Pillow cannot write, is
a usage error that names the option and the file in the way, found before any work, never a
traceback. A file is written to a temporary name in its folder, flushed to disk, given the mode a
plain ``open()`` would have given it (0666 less the umask: ``mkstemp`` makes 0600 files, which
the other users of a shared folder could not read) and renamed over the target, so a process
killed while writing leaves the previous file intact.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from corpus.errors import UsageProblem


def check_folder(path: Path, option: str = "--out") -> None:
    """Refuse, before any work, a folder path that is a file or lies under one."""
    blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise UsageProblem(
            f"{option} {path} cannot be a folder: {blocker} is a file",
            hint=f"choose another {option}, or move {blocker} away",
        )


def make_folder(path: Path, option: str = "--out") -> Path:
    """``mkdir -p path``, or a :class:`UsageProblem` saying why ``option`` cannot be that folder."""
    path = Path(path)
    check_folder(path, option)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageProblem(
            f"{option} {path} cannot be made: {exc.strerror}", hint=f"choose another {option}"
        ) from None
    return path


def writable_file(path: Path, option: str) -> Path:
    """``path`` with its folder made, ready to write; a folder there, or a file in the way of its
    folder, is a :class:`UsageProblem` naming ``option``."""
    path = Path(path)
    if path.is_dir():
        raise UsageProblem(f"{option} {path} is a folder", hint=f"give {option} a file name")
    make_folder(path.parent, option)
    return path


def check_picture_file(path: Path, option: str = "--out") -> None:
    """Refuse, before any work, a picture path Pillow could not write: a folder, a path under a
    file, or a name without an image extension (Pillow picks the format by it)."""
    from PIL import Image

    if path.is_dir():
        raise UsageProblem(
            f"{option} {path} is a folder", hint=f"give {option} a file name, e.g. preview.png"
        )
    Image.init()
    if path.suffix.lower() not in Image.registered_extensions():
        raise UsageProblem(
            f"{option} {path} has no image extension"
            + (f" Pillow can write ({path.suffix})" if path.suffix else ""),
            hint=f"end {option} in .png (or .jpg, .webp)",
        )
    check_folder(path.parent, option)


def _umask() -> int:
    """This process's umask, read without changing it where Linux says it (os.umask sets it, and
    another thread could create a file in the moment it is changed)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(target: Path, write: Callable[[BinaryIO], None], option: str = "--out") -> Path:
    """Call ``write`` on a temporary file beside ``target``, then rename it over ``target``."""
    make_folder(target.parent, option)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fchmod(fh.fileno(), 0o666 & ~_umask())
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def save_picture(picture: Any, target: Path, option: str = "--out") -> Path:
    """Save a PIL image to ``target`` with :func:`atomic_write`, in the format its extension
    names (checked by :func:`check_picture_file`)."""
    from PIL import Image

    fmt = Image.registered_extensions()[Path(target).suffix.lower()]
    return atomic_write(Path(target), lambda fh: picture.save(fh, format=fmt), option)
