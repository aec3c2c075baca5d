"""A folder of shader files (or a git checkout), each file one program.

Programs are ``git:REPO/PATH`` when the folder is a git checkout whose ``origin`` remote names a
host (read from ``.git/config``, no git needed), else ``dir:FOLDER/PATH``: FOLDER is the imported
folder's own name and PATH is relative to it, so two folders that both hold ``main.frag`` stay
two programs.
The nearest LICENSE / LICENCE / COPYING (optionally ``.md``, ``.txt``) at or above a file's
folder, up to the imported root, covers it; each licence file is read once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import partial
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from corpus.records import ProgramRecord
from harvest.formats import MAX_CODE_BYTES, glsl_file_record
from harvest.importers.base import BadRecord, checked, utf8_problem
from harvest.importers.detect import SHADER_SUFFIXES
from harvest.importers.tree import walk_files

_LICENCE_STEMS = ("license", "licence", "copying")
_LICENCE_SUFFIXES = ("", ".md", ".txt")
_MAX_LICENCE_BYTES = 1024 * 1024
_REMOTE = re.compile(r'^\s*\[\s*remote\s+"([^"]*)"\s*\]')
_URL_KEY = re.compile(r"^\s*url\s*=\s*(.*?)\s*$", re.I)
_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?([^:/]+):(?!//)(.+)$")


def read_directory(
    path: Path, *, repo: str | None = None, label: str | None = None
) -> Iterator[ProgramRecord | BadRecord]:
    """Every shader file under ``path`` (or ``path`` itself when it is one file), sorted.

    ``repo`` names the repository when the caller knows it better than ``.git/config`` does (a
    crawl of a ``file://`` URL); ``label`` replaces the folder in each record's origin, so a crawl
    records its URL and commit rather than a cache path.
    """
    root = path.parent if path.is_file() else path
    label = label or str(root)
    repo = repo or git_remote_repo(root)
    licences = _LicenceFinder(root)
    if path.is_file():
        members: list[str | BadRecord] = [path.name]
    else:
        members = walk_files(root, label, lambda rel: rel.lower().endswith(SHADER_SUFFIXES))
    for rel in members:
        if isinstance(rel, BadRecord):
            yield rel
            continue
        location = f"{label}!{rel}"
        code = _read_code(root / rel, location)
        if isinstance(code, BadRecord):
            yield code
            continue
        licence_text, licence_path = licences.covering(rel)
        parse = partial(
            glsl_file_record,
            rel,
            code,
            source="git" if repo else "dir",
            external_id=f"{repo}/{rel}" if repo else f"{root.resolve().name}/{rel}",
            origin=location,
            repo_licence_text=licence_text,
            repo_licence_path=licence_path,
        )
        yield from checked(location, parse)


def _read_code(path: Path, location: str) -> str | BadRecord:
    try:
        size = path.stat().st_size
        if size > MAX_CODE_BYTES:
            return BadRecord(
                location, f"code field too large ({size} bytes, limit {MAX_CODE_BYTES // 2**20} MiB)"
            )
        data = path.read_bytes()
    except OSError as exc:
        return BadRecord(location, f"cannot read file ({exc.strerror or exc})")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return BadRecord(location, utf8_problem(exc))


class _LicenceFinder:
    """The nearest licence file for each folder, each folder listed and each file read once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._root_real = root.resolve()
        self._by_folder: dict[str, tuple[str | None, str | None]] = {}

    def covering(self, rel: str) -> tuple[str | None, str | None]:
        folder = PurePosixPath(rel).parent
        chain = [folder, *folder.parents]
        for candidate in chain:
            key = candidate.as_posix()
            if key not in self._by_folder:
                self._by_folder[key] = self._in_folder(key)
            if self._by_folder[key][0] is not None:
                return self._by_folder[key]
        return None, None

    def _in_folder(self, key: str) -> tuple[str | None, str | None]:
        folder = self.root / key
        try:
            names = {p.name.lower(): p.name for p in folder.iterdir() if self._inside(p) and p.is_file()}
        except OSError:
            return None, None
        for stem in _LICENCE_STEMS:
            for suffix in _LICENCE_SUFFIXES:
                name = names.get(stem + suffix)
                if name is None:
                    continue
                try:
                    with (folder / name).open("rb") as f:
                        text = f.read(_MAX_LICENCE_BYTES).decode("utf-8", "replace")
                except OSError:
                    continue
                return text, (PurePosixPath(key) / name).as_posix() if key != "." else name
        return None, None

    def _inside(self, path: Path) -> bool:
        """A licence file that is a symlink out of the imported folder is never read."""
        return not path.is_symlink() or path.resolve().is_relative_to(self._root_real)


def git_remote_repo(root: Path) -> str | None:
    """``host/owner/name`` of the checkout's ``origin`` remote, or ``None`` (no checkout, no
    origin, or a remote that is a local path)."""
    config = _git_config_path(root)
    if config is None:
        return None
    try:
        lines = config.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    section = None
    for line in lines:
        header = _REMOTE.match(line)
        if header:
            section = header.group(1)
            continue
        if line.lstrip().startswith("["):
            section = None
            continue
        url = _URL_KEY.match(line)
        if section == "origin" and url:
            return normalise_remote_url(url.group(1).strip('"'))
    return None


def _git_config_path(root: Path) -> Path | None:
    dot_git = root / ".git"
    if dot_git.is_dir():
        return dot_git / "config"
    if not dot_git.is_file():
        return None
    # A worktree or submodule: ".git" is a file "gitdir: PATH"; a worktree shares its config.
    try:
        text = dot_git.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    if not text.startswith("gitdir:"):
        return None
    git_dir = (root / text[len("gitdir:") :].strip()).resolve()
    common = git_dir / "commondir"
    if common.is_file():
        git_dir = (git_dir / common.read_text(encoding="utf-8", errors="replace").strip()).resolve()
    return git_dir / "config"


def normalise_remote_url(url: str) -> str | None:
    """``git@github.com:a/b.git`` and ``https://user:token@github.com/a/b.git`` → ``github.com/a/b``.

    Scheme, credentials, port and a trailing ``.git`` are dropped; a local path gives ``None``.
    """
    url = url.strip()
    if "://" in url:
        parts = urlsplit(url)
        host, repo_path = parts.hostname, parts.path
    else:
        match = _SCP_LIKE.match(url)
        if not match:
            return None
        host, repo_path = match.group(1), match.group(2)
    repo_path = repo_path.strip("/").removesuffix(".git").strip("/")
    if not host or not repo_path:
        return None
    return f"{host.lower()}/{repo_path}"
