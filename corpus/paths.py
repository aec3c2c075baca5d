"""Output paths given on a command line: a folder that cannot be one (a file, or a path under a
file) is a usage error that names the option and the file in the way, never a traceback."""

from __future__ import annotations

from pathlib import Path

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
