"""Verifying an exported snapshot folder: every file against the hashes that vouch for it.

``snapshot.json`` vouches for ``manifest.jsonl`` (``manifest_sha256``) and the two documents
(``files_sha256``); each manifest line vouches for its pass files (``code_sha256``); and
``snapshot_sha256`` vouches for every other field of ``snapshot.json`` itself (its name,
creation time, filters, policy hash …), so an edit to any of them is caught; a ``snapshot.json``
without it fails (removing it would otherwise hide any edit). The manifest is
also checked against what the filters claim (licence classes, sources, dialects, SPDX ids,
authors), and the documents' headings against the snapshot's name.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from corpus.errors import SnapshotError
from corpus.records import author_key

MANIFEST = "manifest.jsonl"
SELF_HASH = "snapshot_sha256"
#: The first line of each document, naming the snapshot (see corpus.snapshots)
DOCUMENT_HEADINGS = {
    "ATTRIBUTION.md": "# Attribution for snapshot {name}",
    "LICENCES.md": "# Licences in snapshot {name}",
}


def snapshot_meta_sha256(meta: dict[str, Any]) -> str:
    """The hash ``snapshot.json`` carries of its own fields: canonical JSON of every field but
    :data:`SELF_HASH`, so that no field can change unnoticed."""
    fields = {k: v for k, v in meta.items() if k != SELF_HASH}
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _load(root: Path) -> tuple[dict[str, Any], bytes]:
    if not root.is_dir():
        raise SnapshotError(
            f"{root} is not a folder", hint="pass the folder that corpus snapshot export wrote"
        )
    try:
        meta = json.loads((root / "snapshot.json").read_text(encoding="utf-8"))
        manifest_bytes = (root / MANIFEST).read_bytes()
    except FileNotFoundError as exc:
        raise SnapshotError(f"{root} is not a snapshot folder: {Path(exc.filename).name} is missing") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SnapshotError(f"{root}/snapshot.json is not valid JSON") from exc
    if not isinstance(meta, dict):
        raise SnapshotError(f"{root}/snapshot.json is not a JSON object")
    return meta, manifest_bytes


def _meta_problems(root: Path, meta: dict[str, Any], manifest_bytes: bytes) -> tuple[list[str], list[str]]:
    """Problems with snapshot.json's own fields and the files it vouches for; and warnings."""
    problems: list[str] = []
    warnings: list[str] = []
    if SELF_HASH not in meta:
        # Removing the hash must not be a way round it: without it nothing vouches for the name,
        # the filters or the other hashes, so the folder is not verified.
        problems.append(
            f"snapshot.json has no {SELF_HASH}: its name, creation time and filters cannot be checked"
        )
    elif meta[SELF_HASH] != snapshot_meta_sha256(meta):
        problems.append(f"snapshot.json was edited: its fields do not match its {SELF_HASH}")
    if hashlib.sha256(manifest_bytes).hexdigest() != meta.get("manifest_sha256"):
        problems.append("manifest.jsonl does not match the manifest_sha256 in snapshot.json")
    files = meta.get("files_sha256")
    for file_name, digest in sorted((files if isinstance(files, dict) else {}).items()):
        try:
            data = (root / file_name).read_bytes()
        except FileNotFoundError:
            problems.append(f"{file_name} is missing")
            continue
        if hashlib.sha256(data).hexdigest() != digest:
            problems.append(f"{file_name} does not match its hash in snapshot.json")
        elif file_name in DOCUMENT_HEADINGS:
            heading = DOCUMENT_HEADINGS[file_name].format(name=meta.get("name"))
            if data.decode("utf-8", "replace").split("\n", 1)[0] != heading:
                problems.append(f"{file_name} names another snapshot than snapshot.json does")
    return problems, warnings


def _outside_filters(line: dict[str, Any], filters: dict[str, Any]) -> str | None:
    """The first filter of ``filters`` that a manifest line does not meet, or None."""
    source = str(line.get("program", "")).partition(":")[0]
    checks = (
        ("licence_classes", line.get("licence_class"), lambda v: v),
        ("sources", source, lambda v: v),
        ("dialects", line.get("dialect"), lambda v: v),
        ("spdx", str(line.get("licence_spdx", "")).lower(), lambda v: str(v).lower()),
        ("authors", author_key(line.get("author")), author_key),
    )
    for name, value, key in checks:
        allowed = filters.get(name)
        if isinstance(allowed, list) and allowed and value not in {key(v) for v in allowed}:
            return name.replace("_", " ")
    return None


def verify_snapshot_dir(folder: str | Path, *, raise_on_problems: bool = True) -> dict[str, Any]:
    """Re-hash an exported snapshot folder: snapshot.json's own fields, the manifest against
    snapshot.json, every pass file against its manifest hash, ATTRIBUTION.md and LICENCES.md
    against snapshot.json, every entry against the filters it claims, and no file missing or
    extra. Raises :class:`SnapshotError` on any problem unless told to just report."""
    root = Path(folder)
    meta, manifest_bytes = _load(root)
    problems, warnings = _meta_problems(root, meta, manifest_bytes)
    filters = meta.get("filters") if isinstance(meta.get("filters"), dict) else {}
    expected: set[Path] = set()
    count = 0
    for n, raw in enumerate(manifest_bytes.decode("utf-8", "replace").splitlines(), 1):
        try:
            line = json.loads(raw)
            index = int(line["index"])
            passes = line["passes"]
        except (ValueError, KeyError, TypeError):
            problems.append(f"manifest.jsonl:{n}: not a manifest line")
            continue
        count += 1
        outside = _outside_filters(line, filters)
        if outside:
            problems.append(f"manifest.jsonl:{n}: {line.get('program')} is outside the {outside} filter")
        for p in passes:
            file = str(p.get("file", ""))
            if "/" in file or "\\" in file or file.startswith("."):
                problems.append(f"manifest.jsonl:{n}: unsafe file name {file!r}")
                continue
            path = root / "programs" / str(index) / file
            expected.add(path)
            try:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            except FileNotFoundError:
                problems.append(f"programs/{index}/{file} is missing")
                continue
            if digest != p.get("code_sha256"):
                problems.append(f"programs/{index}/{file} does not match its code_sha256")
    present = (
        {p for p in (root / "programs").rglob("*") if p.is_file()} if (root / "programs").exists() else set()
    )
    for extra in sorted(present - expected):
        problems.append(f"{extra.relative_to(root)} is not in the manifest")
    if meta.get("entries") is not None and meta["entries"] != count:
        problems.append(f"snapshot.json says {meta['entries']} entries, the manifest has {count}")
    report = {
        "folder": str(root),
        "name": meta.get("name"),
        "entries": count,
        "ok": not problems,
        "problems": problems,
        "warnings": warnings,
    }
    if problems and raise_on_problems:
        raise verification_error(report)
    return report


def verification_error(report: dict[str, Any]) -> SnapshotError:
    """The one-line error for a failed verification: the first problem and how many more."""
    problems = report["problems"]
    more = len(problems) - 1
    return SnapshotError(
        f"snapshot folder {report['folder']} failed verification: {problems[0]}"
        + (f" (and {more} more problem{'s' if more > 1 else ''}; --json lists them)" if more else ""),
        hint="export the snapshot again from the catalogue",
    )
