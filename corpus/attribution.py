"""Credits: the line a program gets wherever its code or its pictures go, so that a snapshot's
``ATTRIBUTION.md`` and the credits beside a contact sheet read the same.

Most public shaders are under licences that require attribution (CC BY-NC-SA 3.0 is Shadertoy's
default), and a picture rendered from a program is made from its code: a contact sheet shown in a
paper or a README owes its authors the same credit as a snapshot does.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from corpus.filters import LIMITED_USE_CLASSES
from corpus.paths import atomic_write


def markdown_text(value: str | None, empty: str = "untitled") -> str:
    """``value`` on one line with Markdown's special characters escaped (``empty`` when it has
    nothing but whitespace)."""
    value = " ".join((value or "").split())
    return re.sub(r"([\\`*_\[\]<>|#])", r"\\\1", value) if value else empty


def _link(url: str) -> str:
    """``url`` as an autolink: the characters that would end one are percent-encoded."""
    return "<" + url.strip().replace(" ", "%20").replace("<", "%3C").replace(">", "%3E") + ">"


def attribution_line(line: Mapping[str, Any]) -> str:
    """``- INDEX: **title** by author (SOURCE:ID) <url>, licence SPDX`` for one program. SOURCE:ID
    stays as it is (ids are what users copy from here; Shadertoy's are letters and digits)."""
    url = f" {_link(line['url'])}" if line.get("url") and line["url"].strip() else ""
    return (
        f"- {line['index']}: **{markdown_text(line['title'])}** by "
        f"{markdown_text(line['author'], 'unknown author')} ({line['program']}){url}, "
        f"licence {line['licence_spdx']}"
    )


def sheet_credits(picture: str, rows: Iterable[Mapping[str, Any]]) -> str:
    """The credits of a picture rendered from programs (a contact sheet, a preview): ``rows``
    (`corpus ls` rows or snapshot manifest entries, in the order the programs first appear), and
    how many are under licences that limit the picture's use."""
    rows = list(rows)
    classes = Counter(row.get("licence_class") or "unknown" for row in rows)
    limited = {c: classes[c] for c in LIMITED_USE_CLASSES if classes[c]}
    lines = [
        f"# Programs in {markdown_text(picture)}",
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
    text = sheet_credits(picture.name, rows).encode("utf-8")
    return atomic_write(credits_path(picture), lambda fh: fh.write(text))
