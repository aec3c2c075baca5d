"""Where pretrain writes: folders made with a clear error when a path cannot be one, and files
written whole or not at all.

A file is written to a temporary name in its folder, flushed to disk, given the mode a plain
``open()`` would have given it (0666 less the umask: ``mkstemp`` makes 0600 files, which the
other users of a shared run folder could not read) and renamed over the target, so a process
killed while writing leaves the previous file intact.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

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
    """``mkdir -p path``, with :func:`check_folder`'s error where it cannot be made."""
    check_folder(path, option)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageProblem(
            f"{option} {path} cannot be made: {exc.strerror}", hint=f"choose another {option}"
        ) from exc
    return path


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
