"""Scanning text for licence statements, and normalising a stated licence to SPDX.

The two call each other: an ``SPDX-License-Identifier`` line found by a scan is normalised, and
a free-form name that is no SPDX expression ("GPLv3") is normalised by scanning it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from corpus.licences.ids import lookup_id
from corpus.licences.rules import ARR_PLAIN, RULES
from corpus.licences.spdx import normalise_expression
from corpus.licences.verdicts import (
    ALL_RIGHTS_RESERVED,
    MATCHED_TEXT_MAX,
    NOASSERTION,
    NONCOMMERCIAL,
    PUBLIC_DOMAIN,
)

_NOTHING_STATED = {"", "noassertion", "none", "unknown", "n/a", "na", "null", "nil", "other", "-", "?"}


@dataclass(frozen=True)
class Hit:
    spdx: str
    score: float
    start: int
    end: int
    text: str
    evidence: str
    vague: bool = False


def _family(spdx: str) -> str:
    core = spdx[len("LicenseRef-") :] if spdx.startswith("LicenseRef-") else spdx
    core = re.sub(r"-(?:only|or-later)$", "", core)
    core = re.sub(r"-\d\.\d$", "", core)
    return "BSD" if core.startswith("BSD") else core.upper()


def _refine(hits: list[Hit], *, prefer_or_later: bool) -> list[Hit]:
    """Drop hits that another hit in the same text explains, then keep one hit per licence.

    "All rights reserved" before a grant is that grant's copyright line; "public domain" inside
    the Unlicense or CC0 is that licence; a licence named without its version is the versioned
    one named nearby. In code, "version 3, or any later version" refines a bare "GPLv3".
    """
    spdx_ids = {h.spdx for h in hits}
    kept: list[Hit] = []
    for hit in hits:
        if hit.spdx == ALL_RIGHTS_RESERVED and (
            (hit.score <= ARR_PLAIN and len(spdx_ids) > 1)
            or any(o.spdx != ALL_RIGHTS_RESERVED and o.score >= 0.85 for o in hits)
        ):
            continue
        if hit.spdx == PUBLIC_DOMAIN and spdx_ids & {"Unlicense", "CC0-1.0"}:
            continue
        if hit.spdx == NONCOMMERCIAL and any(s != NONCOMMERCIAL and "-NC" in s for s in spdx_ids):
            continue
        if hit.vague and any(not o.vague and _family(o.spdx) == _family(hit.spdx) for o in hits):
            continue
        if prefer_or_later and hit.spdx.endswith("-only") and hit.spdx[:-5] + "-or-later" in spdx_ids:
            continue
        kept.append(hit)
    return _dedupe(kept)


def _dedupe(hits: list[Hit]) -> list[Hit]:
    best: dict[str, Hit] = {}
    for hit in hits:
        if hit.spdx not in best or hit.score > best[hit.spdx].score:
            best[hit.spdx] = hit
    return sorted(best.values(), key=lambda h: h.start)


def scan(text: str, *, prefer_or_later: bool = True) -> list[Hit]:
    lowered = text.lower()
    hits: list[Hit] = []
    for rule in RULES:
        if not any(key in lowered for key in rule.keys):
            continue
        for match in rule.pattern.finditer(text):
            found = rule.handler(match, text)
            if found is None:
                continue
            spdx, score, *vague = found
            if rule.evidence == "spdx-line":
                spdx = normalise_spdx(spdx)
                if spdx == NOASSERTION:
                    continue
            matched = " ".join(match.group(0).split())[:MATCHED_TEXT_MAX]
            hits.append(
                Hit(spdx, score, match.start(), match.end(), matched, rule.evidence, bool(vague and vague[0]))
            )
    # Ids inside an SPDX line ("MIT OR Apache-2.0") are that line's, not statements of their own.
    lines = [(h.start, h.end) for h in hits if h.evidence == "spdx-line"]
    if lines:
        hits = [h for h in hits if h.evidence == "spdx-line" or not any(s <= h.start < e for s, e in lines)]
    hits.sort(key=lambda h: h.start)
    return _refine(hits, prefer_or_later=prefer_or_later)


def best(hits: list[Hit]) -> Hit | None:
    return max(hits, key=lambda h: h.score) if hits else None  # max keeps the first of equals


@lru_cache(maxsize=4096)
def normalise_spdx(expression: str) -> str:
    """Normalise a stated licence to an SPDX expression; ``NOASSERTION`` if it names none.

    Takes SPDX expressions in any case ("mit or apache-2.0" -> "MIT OR Apache-2.0"), deprecated
    ids ("GPL-2.0+" -> "GPL-2.0-or-later") and the free-form names dumps and READMEs use
    ("MIT License", "GPLv3", "CC BY-NC-SA 3.0", "Public Domain").
    """
    text = " ".join(str(expression or "").split()).strip("\"'` ")
    if text.lower().strip(" .") in _NOTHING_STATED:
        return NOASSERTION
    known = lookup_id(text.rstrip("."))
    if known is not None:
        return known
    rendered = normalise_expression(text)
    if rendered is not None:
        return rendered
    hit = best(scan(text))
    return hit.spdx if hit is not None else NOASSERTION
