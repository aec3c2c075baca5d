"""Snapshots: frozen, named selections of program versions, and their export folder.

A snapshot pins each entry's program *version* (its code hash) and freezes every field its
manifest line needs, so it never changes after creation, even when programs are re-imported
with new code, retitled or excluded later. Export writes the folder format that DESIGN fixes
(``manifest.jsonl``, ``programs/<index>/<pass>.glsl``, ``snapshot.json``, ``ATTRIBUTION.md``,
``LICENCES.md``) into a temporary sibling and renames it into place, so a failed export leaves
nothing half-written; the same snapshot always exports to the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select

from corpus.attribution import attribution_line
from corpus.code_search import refresh_code_index
from corpus.db import Catalogue
from corpus.errors import NotFoundError, SnapshotError
from corpus.filter_sql import apply_filter
from corpus.filters import ProgramFilter
from corpus.models import (
    Blob,
    Licence,
    Program,
    ProgramVersion,
    RenderPass,
    Snapshot,
    SnapshotEntry,
    Source,
    Vetting,
)
from corpus.snapshot_verify import (
    DOCUMENT_HEADINGS,
    MANIFEST,
    SELF_HASH,
    snapshot_meta_sha256,
    verification_error,
    verify_snapshot_dir,
)
from corpus.times import iso_utc
from corpus.validations import nothing_vetted_hint

__all__ = [  # verification lives in corpus.snapshot_verify; its names are importable from here too
    "DEFAULT_CLASSES",
    "MANIFEST",
    "SnapshotSummary",
    "create_snapshot",
    "delete_snapshot",
    "export_snapshot",
    "list_snapshots",
    "pass_file_name",
    "show_snapshot",
    "snapshot_meta_sha256",
    "verification_error",
    "verify_snapshot_dir",
]

DEFAULT_CLASSES = ("permissive", "public-domain")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_PASS_FILE_RE = re.compile(r"[^a-z0-9]+")


def pass_file_name(name: str) -> str:
    """``"Buffer A"`` → ``buffer_a.glsl``: built from the pass name only, never from an external id."""
    stem = _PASS_FILE_RE.sub("_", name.lower()).strip("_") or "pass"
    return f"{stem}.glsl"


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


@dataclass
class SnapshotSummary:
    name: str
    created: str
    entries: int
    manifest_sha256: str
    filters: dict[str, Any]
    policy_hash: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "created": self.created,
            "entries": self.entries,
            "manifest_sha256": self.manifest_sha256,
            "filters": self.filters,
            "policy_hash": self.policy_hash,
        }


def _summary(snap: Snapshot) -> SnapshotSummary:
    return SnapshotSummary(
        name=snap.name,
        created=iso_utc(snap.created_at) or "",
        entries=snap.entry_count,
        manifest_sha256=snap.manifest_sha256,
        filters=snap.filters,
        policy_hash=snap.policy_hash,
    )


def _manifest_lines(s, snapshot_id: int) -> Iterator[tuple[SnapshotEntry, dict[str, Any], list[dict]]]:
    """Each entry with its manifest line and passes (code included), in label order.

    One query streams every entry's passes joined with their code, so a 50k-entry snapshot
    costs one round trip, not one per entry.
    """
    rows = s.execute(
        select(SnapshotEntry, RenderPass, Blob.text)
        .join(RenderPass, RenderPass.version_id == SnapshotEntry.version_id)
        .join(Blob, Blob.sha256 == RenderPass.code_sha256)
        .where(SnapshotEntry.snapshot_id == snapshot_id)
        .order_by(SnapshotEntry.label, RenderPass.position)
        .execution_options(yield_per=2000)
    )
    for _, group in groupby(rows, key=lambda r: r[0].label):
        group = list(group)
        e = group[0][0]
        passes = [
            {"name": p.name, "type": p.type, "code_sha256": p.code_sha256, "inputs": p.inputs, "code": code}
            for _, p, code in group
        ]
        line = {
            "index": e.label,
            "program": e.program_key,
            "dialect": e.dialect,
            "passes": [
                {
                    "name": p["name"],
                    "type": p["type"],
                    "file": pass_file_name(p["name"]),
                    "code_sha256": p["code_sha256"],
                    "inputs": p["inputs"],
                }
                for p in passes
            ],
            "licence_spdx": e.licence_spdx,
            "licence_class": e.licence_class,
            "author": e.author,
            "title": e.title,
            "url": e.url,
        }
        yield e, line, passes


def create_snapshot(
    catalogue: Catalogue,
    name: str,
    flt: ProgramFilter | None = None,
    *,
    allow: tuple[str, ...] | list[str] = (),
    policy_hash: str | None = None,
) -> SnapshotSummary:
    """Freeze the programs ``flt`` selects (non-duplicates of the allowed licence classes)."""
    if not _NAME_RE.match(name):
        raise SnapshotError(
            f"{name!r} is not a usable snapshot name",
            hint="use letters, digits, '.', '_' or '-' (at most 128), starting with a letter or digit",
        )
    flt = flt or ProgramFilter(include_duplicates=False)
    flt.include_excluded = False  # a takedown always wins, whatever the filters say
    # --licence narrows within what the policy allows; only --allow widens it.
    allowed = list(dict.fromkeys([*DEFAULT_CLASSES, *allow]))
    outside = [c for c in flt.licence_classes if c not in allowed]
    if outside:
        raise SnapshotError(
            f"licence class {', '.join(outside)} is not allowed in a snapshot by default",
            hint=" ".join(f"--allow {c}" for c in outside) + " takes it, if its terms fit your use",
        )
    flt.licence_classes = list(flt.licence_classes) or allowed
    now = datetime.now(UTC)
    if flt.code:
        refresh_code_index(catalogue)
    with catalogue.session() as s:
        if s.execute(select(Snapshot.id).where(Snapshot.name == name)).scalar() is not None:
            raise SnapshotError(
                f"a snapshot named {name} already exists", hint="snapshots never change: choose another name"
            )
        stmt = (
            select(
                Program.id,
                Source.name,
                Program.external_id,
                Program.dialect,
                Program.author,
                Program.title,
                Program.url,
                Program.code_sha256,
                Licence.spdx,
                Licence.licence_class,
                ProgramVersion.id.label("version_id"),
            )
            .select_from(Program)
            .join(Source, Source.id == Program.source_id)
            .join(Licence, Licence.program_id == Program.id, isouter=True)
            .join(
                ProgramVersion,
                (ProgramVersion.program_id == Program.id)
                & (ProgramVersion.code_sha256 == Program.code_sha256),
            )
        )
        stmt = apply_filter(stmt, flt, catalogue.dialect).order_by(Source.name, Program.external_id)
        rows = s.execute(stmt).all()
        if not rows and flt.vetted and (hint := nothing_vetted_hint(s)):
            raise SnapshotError(
                f"no program is vetted, so snapshot {name} would be empty; nothing was created", hint=hint
            )
        if not rows:
            raise SnapshotError(
                f"no program matches the filters and licence policy of snapshot {name}; nothing was created",
                hint="check the filters with corpus ls, or add licence classes with --allow",
            )
        if flt.vetted and policy_hash is None:
            policy_hash = _vetting_policy(s, [r.id for r in rows], name)
        snapshot_id = s.execute(
            insert(Snapshot).returning(Snapshot.id),
            {
                "name": name,
                "created_at": now,
                "filters": flt.to_json(),
                "policy_hash": policy_hash,
                "manifest_sha256": "",
                "entry_count": len(rows),
            },
        ).scalar_one()
        entries = [
            {
                "snapshot_id": snapshot_id,
                "label": label,
                "program_id": r.id,
                "version_id": r.version_id,
                "program_key": f"{r.name}:{r.external_id}",
                "code_sha256": r.code_sha256,
                "dialect": r.dialect,
                "licence_spdx": r.spdx or "NOASSERTION",
                "licence_class": r.licence_class or "unknown",
                "author": r.author,
                "title": r.title,
                "url": r.url,
            }
            for label, r in enumerate(rows)
        ]
        for i in range(0, len(entries), 5000):
            s.execute(insert(SnapshotEntry), entries[i : i + 5000])
        digest = hashlib.sha256()
        for _, line, _ in _manifest_lines(s, snapshot_id):
            digest.update((_dumps(line) + "\n").encode("utf-8"))
        snap = s.get(Snapshot, snapshot_id)
        snap.manifest_sha256 = digest.hexdigest()
        return _summary(snap)


def _vetting_policy(s, program_ids: list[int], name: str) -> str | None:
    """The one vetting policy whose verdicts selected these programs (recorded in the snapshot)."""
    hashes: set[str] = set()
    for i in range(0, len(program_ids), 900):
        hashes.update(
            s.execute(
                select(Vetting.policy_hash).where(Vetting.program_id.in_(program_ids[i : i + 900])).distinct()
            ).scalars()
        )
    if len(hashes) > 1:
        raise SnapshotError(
            f"the programs of snapshot {name} were vetted under {len(hashes)} different policies",
            hint="run `render vet` once more so one policy decides all of them",
        )
    return next(iter(hashes), None)


def _get(s, name: str) -> Snapshot:
    snap = s.execute(select(Snapshot).where(Snapshot.name == name)).scalar_one_or_none()
    if snap is None:
        raise NotFoundError(f"no snapshot named {name}", hint="list them with: corpus snapshot ls")
    return snap


def list_snapshots(catalogue: Catalogue) -> list[SnapshotSummary]:
    with catalogue.session() as s:
        return [_summary(x) for x in s.execute(select(Snapshot).order_by(Snapshot.created_at)).scalars()]


def show_snapshot(catalogue: Catalogue, name: str, *, entries: bool = False) -> dict[str, Any]:
    with catalogue.session() as s:
        snap = _get(s, name)
        out = _summary(snap).to_json()
        out["licences"] = dict(
            Counter(
                s.execute(
                    select(SnapshotEntry.licence_spdx).where(SnapshotEntry.snapshot_id == snap.id)
                ).scalars()
            ).most_common()
        )
        if entries:
            out["programs"] = [line for _, line, _ in _manifest_lines(s, snap.id)]
        return out


def delete_snapshot(catalogue: Catalogue, name: str) -> None:
    """Forget a snapshot (its entries, not the programs): exported folders stay valid."""
    with catalogue.session() as s:
        snap = _get(s, name)
        s.execute(delete(SnapshotEntry).where(SnapshotEntry.snapshot_id == snap.id))
        s.execute(delete(Snapshot).where(Snapshot.id == snap.id))


def _make_parent(out: Path) -> Path:
    """The folder ``out`` goes in, created if need be; a clear error where a file is in the way."""
    parent = out.resolve().parent
    for folder in (parent, *parent.parents):
        if folder.exists():
            if not folder.is_dir():
                raise SnapshotError(
                    f"cannot export into {out}: {folder} is a file, not a folder",
                    hint="export into a folder whose parents are folders (or do not exist yet)",
                )
            break
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SnapshotError(
            f"cannot create the folder {parent}: {exc.strerror or exc}", hint="export somewhere you can write"
        ) from exc
    return parent


def export_snapshot(catalogue: Catalogue, name: str, out_dir: str | Path) -> Path:
    """Write the snapshot folder; refuses a non-empty target so nothing of the user's is overwritten."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise SnapshotError(f"{out} is a file", hint="export into a new or empty folder")
    if out.exists() and any(out.iterdir()):
        raise SnapshotError(f"{out} is a folder that is not empty", hint="export into a new or empty folder")
    parent = _make_parent(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=parent))
    try:
        with catalogue.session() as s:
            snap = _get(s, name)
            digest = hashlib.sha256()
            licences: Counter[tuple[str, str]] = Counter()
            attributions: list[str] = []
            (tmp / "programs").mkdir()
            with open(tmp / MANIFEST, "w", encoding="utf-8", newline="\n") as manifest:
                for entry, line, passes in _manifest_lines(s, snap.id):
                    text = _dumps(line) + "\n"
                    manifest.write(text)
                    digest.update(text.encode("utf-8"))
                    folder = tmp / "programs" / str(int(entry.label))
                    folder.mkdir()
                    for p, meta in zip(passes, line["passes"], strict=True):
                        with open(folder / meta["file"], "w", encoding="utf-8", newline="") as f:
                            f.write(p["code"])
                    licences[(entry.licence_spdx, entry.licence_class)] += 1
                    attributions.append(attribution_line(line))
            if digest.hexdigest() != snap.manifest_sha256:
                raise SnapshotError(
                    f"snapshot {name} no longer matches its manifest hash",
                    hint="the catalogue was modified outside imageprograms; recreate the snapshot",
                )
            documents = {
                "ATTRIBUTION.md": _attribution_doc(snap.name, attributions).encode("utf-8"),
                "LICENCES.md": _licences_doc(snap.name, licences).encode("utf-8"),
            }
            for file_name, data in documents.items():
                (tmp / file_name).write_bytes(data)
            meta = {
                "name": snap.name,
                "created": iso_utc(snap.created_at),
                "filters": snap.filters,
                "policy_hash": snap.policy_hash,
                "entries": snap.entry_count,
                "manifest_sha256": snap.manifest_sha256,
                "files_sha256": {k: hashlib.sha256(v).hexdigest() for k, v in documents.items()},
            }
            meta[SELF_HASH] = snapshot_meta_sha256(meta)
            (tmp / "snapshot.json").write_text(
                json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8"
            )
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _attribution_doc(name: str, lines: list[str]) -> str:
    head = (
        DOCUMENT_HEADINGS["ATTRIBUTION.md"].format(name=name) + "\n\n"
        "Every program in this snapshot, with its author, source and licence.\n"
        "Keep this file with any model or dataset you make from the snapshot.\n\n"
    )
    return head + "\n".join(lines) + ("\n" if lines else "")


def _licences_doc(name: str, counts: Counter[tuple[str, str]]) -> str:
    rows = "\n".join(
        f"| {spdx} | {cls} | {n} |" for (spdx, cls), n in sorted(counts.items(), key=lambda x: (-x[1], x[0]))
    )
    return (
        DOCUMENT_HEADINGS["LICENCES.md"].format(name=name)
        + "\n\n| SPDX | class | programs |\n| --- | --- | ---: |\n"
        + rows
        + ("\n" if rows else "")
    )
