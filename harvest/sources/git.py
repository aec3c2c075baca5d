"""git repositories by URL (``https://``, ``ssh://``, ``git@host:…`` or a local ``file://``): a
shallow clone into a cache folder, or a fetch and hard reset of the one already there, then the
shader files are read the way ``harvest import`` reads a checkout (same suffixes, ISF, LICENSE),
as programs ``git:REPO/PATH`` where REPO is the URL without scheme, credentials and ``.git``.

Nothing here goes through the HTTP fetcher: git does the transfer, without a terminal prompt,
under a timeout and without Git LFS downloads. The reader skips files over the size cap and never
follows a symlink out of the checkout (see :mod:`harvest.importers.directory`).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from corpus.errors import ImageProgramsError, InputFormatError, UsageProblem
from corpus.paths import make_folder
from corpus.records import ProgramRecord
from harvest.importers import BadRecord, normalise_remote_url
from harvest.importers.directory import read_directory
from harvest.sources.base import Parsed

GIT_TIMEOUT = 600.0
_SCHEMES = ("https", "http", "ssh", "git", "file")
_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")
_SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:(?!//)\S+$")
_ENV = {
    "GIT_TERMINAL_PROMPT": "0",  # a private or mistyped URL fails instead of waiting for a password
    "GCM_INTERACTIVE": "never",
    "GIT_LFS_SKIP_SMUDGE": "1",  # LFS objects are large binaries, never shaders
    "GIT_ALLOW_PROTOCOL": ":".join(_SCHEMES),
}


@dataclass(frozen=True)
class Checkout:
    """A repository synced into the cache: what was asked for, and the commit now checked out."""

    url: str  # without credentials: this is what provenance records
    repo: str  # REPO of the ``REPO/PATH`` external ids
    path: Path
    commit: str


class GitRepositories:
    name = "git"
    site = "git"
    default_base_url = None  # each crawl names its repository with --base-url
    needs_key = False
    options = {"cache_dir": None}

    def start(self, base_url: str, options: dict | None = None) -> list:
        return []  # no HTTP: :func:`sync` and :func:`read_checkout` do the work

    def parse(self, kind: str | None, url: str, body: bytes, base_url: str) -> Parsed:
        raise InputFormatError(
            "git crawls keep a checkout, not raw documents",
            hint="run harvest crawl git --base-url URL again: it reads the cached checkout",
        )


def repository_id(url: str) -> str:
    """``https://user:pw@github.com/a/b.git`` → ``github.com/a/b``; ``file:///srv/x.git`` → ``srv/x``.

    Raises :class:`UsageProblem` for what git should not be handed: a local path (``harvest
    import`` reads folders), an option-like string, or a transport other than the usual ones.
    """
    url = url.strip()
    if "://" in url:
        parts = urlsplit(url)
        if parts.scheme.lower() not in _SCHEMES:
            raise UsageProblem(
                f"{url}: git crawls use {', '.join(_SCHEMES)} or user@host:path URLs",
                hint="for a local folder use harvest import PATH, or file:///absolute/path",
            )
        if parts.scheme.lower() == "file":
            repo = parts.path.strip("/").removesuffix(".git").strip("/")
            if repo:
                return repo
        elif (repo := normalise_remote_url(url)) is not None:
            return repo
    elif _SCP_LIKE.match(url) and (repo := normalise_remote_url(url)) is not None:
        return repo
    raise UsageProblem(
        f"{url!r} is not a repository URL",
        hint="pass --base-url https://host/owner/repo.git (or file:///path/to/repo); folders: harvest import",
    )


def without_credentials(url: str) -> str:
    """The URL with any ``user:password@`` dropped, so a token never reaches the catalogue."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def default_cache_dir(database: str | None) -> Path:
    """Beside a catalogue file (``catalogue.db.repos/``), else in the user's cache folder."""
    if database and database != ":memory:":
        db = Path(database)
        return db.with_name(db.name + ".repos")
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "imageprograms" / "repos"


def sync(url: str, cache_dir: Path, *, timeout: float = GIT_TIMEOUT) -> Checkout:
    """Clone ``url`` into ``cache_dir`` (depth 1), or bring the clone already there to the
    remote's HEAD; a clone is made beside its place and renamed, so a killed crawl never leaves
    a half clone that looks whole."""
    repo = repository_id(url)
    safe_url = without_credentials(url)
    make_folder(cache_dir, "--cache-dir")  # a file in the way is said before any network
    name = re.sub(r"[^\w.-]", "_", repo.rsplit("/", 1)[-1])[:60]
    dest = cache_dir / f"{name}-{hashlib.sha256(repo.encode()).hexdigest()[:12]}"
    if (dest / ".git").is_dir():
        fetch = ["-C", dest, "fetch", "--quiet", "--depth", "1", "--no-tags", "--", url, "HEAD"]
        _git(fetch, safe_url, timeout)
        _git(["-C", dest, "reset", "--quiet", "--hard", "FETCH_HEAD"], safe_url, timeout)
        _git(["-C", dest, "clean", "-ffdxq"], safe_url, timeout)
    else:
        partial = dest.with_name(dest.name + ".partial")
        for leftover in (dest, partial):
            shutil.rmtree(leftover, ignore_errors=True)
        _git(["clone", "--quiet", "--depth", "1", "--no-tags", "--", url, partial], safe_url, timeout)
        _git(["-C", partial, "remote", "set-url", "origin", safe_url], safe_url, timeout)
        partial.rename(dest)
    commit = _git(["-C", dest, "rev-parse", "HEAD"], safe_url, timeout).strip()
    return Checkout(safe_url, repo, dest, commit)


def read_checkout(checkout: Checkout) -> Iterator[ProgramRecord | BadRecord]:
    """Every shader file of the checkout; each record's origin is ``URL@COMMIT!PATH``."""
    return read_directory(checkout.path, repo=checkout.repo, label=f"{checkout.url}@{checkout.commit}")


def _git(args: list, url: str, timeout: float) -> str:
    command = ["git", *map(str, args)]
    try:
        done = subprocess.run(
            command,
            env={**os.environ, **_ENV},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except FileNotFoundError as exc:
        raise ImageProgramsError(
            "git is not installed", hint="install it (apt-get install git) and crawl again"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise ImageProgramsError(
            f"git {args[2] if args[0] == '-C' else args[0]} of {url} took over {timeout:.0f} s",
            hint="try again later, or clone it yourself and run harvest import on the folder",
        ) from exc
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        why = lines[-1].strip() if lines else f"exit status {done.returncode}"
        raise ImageProgramsError(
            f"git could not sync {url}: {_CREDENTIALS.sub('', why)}",
            hint="check the URL, that the repository is public (no password is ever asked), and the network",
        )
    return done.stdout
