"""Where pretrain writes: folders made with a clear error when a path cannot be one."""

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
    """``mkdir -p path``, with :func:`check_folder`'s error where it cannot be made."""
    check_folder(path, option)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageProblem(
            f"{option} {path} cannot be made: {exc.strerror}", hint=f"choose another {option}"
        ) from exc
    return path
