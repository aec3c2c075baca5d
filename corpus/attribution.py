"""Credits: the line a program gets wherever its code or its pictures go, so that a snapshot's
``ATTRIBUTION.md`` and the credits beside a contact sheet read the same.

Most public shaders are under licences that require attribution (CC BY-NC-SA 3.0 is Shadertoy's
default), and a picture rendered from a program is made from its code: a contact sheet shown in a
paper or a README owes its authors the same credit as a snapshot does.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

#: Licence classes whose terms limit what may be done with a program's code or pictures.
LIMITED_CLASSES = ("noncommercial", "copyleft", "proprietary", "unknown")


def markdown_text(value: str | None) -> str:
    """``value`` on one line with Markdown's special characters escaped ("untitled" when empty)."""
    if not value:
        return "untitled"
    return re.sub(r"([\\`*_\[\]<>|#])", r"\\\1", " ".join(value.split()))


def attribution_line(line: Mapping[str, Any]) -> str:
    """``- INDEX: **title** by author (SOURCE:ID) <url>, licence SPDX`` for one program."""
    url = f" <{line['url']}>" if line.get("url") else ""
    return (
        f"- {line['index']}: **{markdown_text(line['title'])}** by "
        f"{markdown_text(line['author'] or 'unknown author')} ({line['program']}){url}, licence "
        f"{line['licence_spdx']}"
    )


def sheet_credits(picture: str, rows: Iterable[Mapping[str, Any]]) -> str:
    """The credits of a picture rendered from programs (a contact sheet, a preview): ``rows``
    (`corpus ls` rows or snapshot manifest entries, in the order the programs first appear), and
    how many are under licences that limit the picture's use."""
    rows = list(rows)
    classes = Counter(row.get("licence_class") or "unknown" for row in rows)
    limited = {c: classes[c] for c in LIMITED_CLASSES if classes[c]}
    lines = [
        f"# Programs in {picture}",
        "",
        "The programs the picture is rendered from, in the order they first appear in it (left to",
        "right, top to bottom): each one's title, author, source and licence. Keep this file with it.",
        "",
    ]
    if limited:
        counts = ", ".join(f"{c} {n}" for c, n in limited.items())
        lines += [
            f"{sum(limited.values())} of {len(rows)} programs are under licences that limit the "
            f"picture's use ({counts}): read their terms before you publish it.",
            "",
        ]
    lines += [
        attribution_line({**row, "index": i, "licence_spdx": row.get("licence_spdx") or "NOASSERTION"})
        for i, row in enumerate(rows, 1)
    ]
    return "\n".join(lines) + "\n"


def credits_path(picture: Path) -> Path:
    """Where a picture's credits go: ``sheet.png`` -> ``sheet.credits.md``."""
    return picture.with_name(f"{picture.stem}.credits.md")


def write_credits(picture: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write :func:`sheet_credits` beside ``picture`` (whole or not at all); return its path."""
    target = credits_path(picture)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(sheet_credits(picture.name, rows), encoding="utf-8")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
