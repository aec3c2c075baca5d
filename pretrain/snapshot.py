"""A snapshot as pretraining reads it: an exported folder, verified, with its programs' code.

Pretraining never reads the live program tables. It takes an exported folder (the contract
between corpus, render and pretrain), or a snapshot name, which corpus exports once into a cache
folder named after its manifest hash (exports are deterministic, so the cache is never stale).
Every open re-verifies the folder against its manifest hash, so training on a folder whose
files were changed fails at once with a message, not hours later with a silent difference.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corpus.errors import CatalogueError, NotFoundError, SnapshotError
from render.program import RenderPassSource, RenderProgram


@dataclass
class SnapshotData:
    root: Path
    name: str
    manifest_sha256: str
    policy_hash: str | None
    entries: list[dict[str, Any]]

    def __len__(self) -> int:
        return len(self.entries)

    def program(self, index: int) -> RenderProgram:
        """Program ``index`` (its label) with its code read from ``programs/<index>/``."""
        entry = self.entries[index]
        folder = self.root / "programs" / str(entry["index"])
        passes = tuple(
            RenderPassSource(
                p["name"],
                p["type"],
                (folder / p["file"]).read_text(encoding="utf-8"),
                tuple(p.get("inputs") or ()),
            )
            for p in entry["passes"]
        )
        code = entry["passes"][0]["code_sha256"] if entry["passes"] else ""
        return RenderProgram(entry["program"], entry["dialect"], passes, code)


def cache_root() -> Path:
    base = os.environ.get("IMAGEPROGRAMS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "imageprograms"
    )
    return Path(base) / "snapshots"


def open_snapshot(name_or_dir: str | Path, *, db: str | None = None, verify: bool = True) -> SnapshotData:
    """Open an exported snapshot folder, or export snapshot ``name`` from the catalogue first."""
    from corpus.snapshots import verify_snapshot_dir

    path = Path(name_or_dir)
    if not path.is_dir():
        path = _export_by_name(str(name_or_dir), db)
    if verify:
        report = verify_snapshot_dir(path, raise_on_problems=False)
        if report.get("problems"):
            problems = "; ".join(report["problems"][:3])
            raise SnapshotError(
                f"snapshot folder {path} does not match its manifest: {problems}",
                hint="export it again (corpus snapshot export NAME DIR); never edit an exported snapshot",
            )
    meta = json.loads((path / "snapshot.json").read_text(encoding="utf-8"))
    entries = [
        json.loads(line)
        for line in (path / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
        if line
    ]
    if not entries:
        raise SnapshotError(
            f"snapshot {meta.get('name', path)} has no programs: there is nothing to train on",
            hint="create one from vetted programs: corpus snapshot create NAME --vetted",
        )
    if [e["index"] for e in entries] != list(range(len(entries))):
        raise SnapshotError(f"{path}/manifest.jsonl: indices are not 0..{len(entries) - 1} in order")
    return SnapshotData(
        path, meta.get("name", path.name), meta["manifest_sha256"], meta.get("policy_hash"), entries
    )


class SnapshotNotFound(NotFoundError, SnapshotError):
    """No snapshot folder and no catalogue snapshot of that name: exit code 5, as for anything
    that does not exist, and still a :class:`SnapshotError` for callers that catch those."""


def _export_by_name(name: str, db: str | None) -> Path:
    from corpus.db import open_catalogue
    from corpus.snapshots import export_snapshot, show_snapshot

    try:
        catalogue = open_catalogue(db)
    except CatalogueError as exc:
        raise SnapshotNotFound(
            f"{name} is neither a snapshot folder nor a snapshot in a catalogue ({exc.message})",
            hint="pass an exported snapshot folder, or --db the catalogue that holds the snapshot",
        ) from exc
    try:
        info = show_snapshot(catalogue, name)
    except (SnapshotError, NotFoundError) as exc:
        raise SnapshotNotFound(
            f"{name} is neither a snapshot folder nor a snapshot in the catalogue",
            hint="list snapshots with `corpus snapshot ls`, or pass an exported folder",
        ) from exc
    target = cache_root() / f"{name}-{info['manifest_sha256'][:16]}"
    if not (target / "snapshot.json").is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        export_snapshot(catalogue, name, target)
    return target
