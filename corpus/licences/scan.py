"""Scanning text for licence statements, and normalising a stated licence to SPDX.

The two call each other, once at most: an ``SPDX-License-Identifier`` line found by a scan is
normalised, and a free-form name that is no SPDX expression ("GPLv3") is normalised by a scan
that skips SPDX lines (so a line repeating ``SPDX-License-Identifier:`` cannot recurse).

Linear in the length of the text whatever it holds: every rule's pattern is free of
quantifiers that could split one run of characters in many ways, and the hits are refined with
sets and sorted intervals, never by comparing every hit with every other (a comment naming the
GPL 4,000 times made that quadratic).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache

from corpus.licences.ids import lookup_id
from corpus.licences.rules import ARR_PLAIN, RULES, Rule
from corpus.licences.spdx import normalise_expression
from corpus.licences.verdicts import (
    ALL_RIGHTS_RESERVED,
    MATCHED_TEXT_MAX,
    NOASSERTION,
    NONCOMMERCIAL,
    PUBLIC_DOMAIN,
)

#: A stated licence longer than this is no SPDX expression (real ones are a few ids): it is
#: scanned as free text, and not cached.
_EXPRESSION_MAX = 2000
#: Statements one rule may report from one text, and matches it may look at: a real header or
#: LICENSE file has a few of each (a GPL text names its licence about twenty times).
_HITS_PER_RULE = 64
_MATCHES_PER_RULE = 1024
_SPDX_PREFIX = re.compile(r"(?:SPDX-License-Identifier[ \t]*:[ \t]*)+", re.IGNORECASE)

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


@lru_cache(maxsize=1024)
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
    # What each test below asks of "any other hit", computed once (hits can be many thousands).
    strong_grant = any(o.spdx != ALL_RIGHTS_RESERVED and o.score >= 0.85 for o in hits)
    named_nc = any(s != NONCOMMERCIAL and "-NC" in s for s in spdx_ids)
    precise_families = {_family(o.spdx) for o in hits if not o.vague}
    extended = _extensions(hits)
    kept: list[Hit] = []
    for hit in hits:
        if hit.spdx == ALL_RIGHTS_RESERVED and (
            (hit.score <= ARR_PLAIN and len(spdx_ids) > 1) or strong_grant
        ):
            continue
        if hit.spdx == PUBLIC_DOMAIN and spdx_ids & {"Unlicense", "CC0-1.0"}:
            continue
        if hit.spdx == NONCOMMERCIAL and named_nc:
            continue
        if hit.vague and _family(hit.spdx) in precise_families:
            continue
        if prefer_or_later and hit.spdx.endswith("-only") and hit.spdx[:-5] + "-or-later" in spdx_ids:
            continue
        if hit.spdx in extended and _covered(hit, extended[hit.spdx]):
            continue
        kept.append(hit)
    return _dedupe(kept)


def _extensions(hits: list[Hit]) -> dict[str, tuple[list[int], list[int]]]:
    """For each id that another hit's id extends ("BSD-2-Clause" by "BSD-2-Clause-Patent"): the
    starts of those hits, sorted, and the furthest end among the hits up to each start."""
    spans: dict[str, list[tuple[int, int]]] = {}
    for hit in hits:
        parts = hit.spdx.split("-")
        for n in range(1, len(parts)):
            spans.setdefault("-".join(parts[:n]), []).append((hit.start, hit.end))
    out: dict[str, tuple[list[int], list[int]]] = {}
    for ident, found in spans.items():
        found.sort()
        ends, furthest = [], -1
        for _, end in found:
            furthest = max(furthest, end)
            ends.append(furthest)
        out[ident] = ([start for start, _ in found], ends)
    return out


def _covered(hit: Hit, extension: tuple[list[int], list[int]]) -> bool:
    """Whether a hit naming a longer id spans ``hit``: "BSD-2-Clause-Patent" is no BSD-2-Clause."""
    starts, ends = extension
    i = bisect_right(starts, hit.start) - 1
    return i >= 0 and ends[i] >= hit.end


def _dedupe(hits: list[Hit]) -> list[Hit]:
    best: dict[str, Hit] = {}
    for hit in hits:
        if hit.spdx not in best or hit.score > best[hit.spdx].score:
            best[hit.spdx] = hit
    return sorted(best.values(), key=lambda h: h.start)


def scan(text: str, *, prefer_or_later: bool = True, spdx_lines: bool = True) -> list[Hit]:
    """Every licence statement in ``text``, refined (see :func:`_refine`), in text order.

    ``spdx_lines=False`` skips ``SPDX-License-Identifier`` lines: normalising a stated licence
    scans it that way, so a scan never recurses more than once.
    """
    lowered = text.lower()
    present: dict[str, bool] = {}  # rules share keys: look for each once in a long text
    hits: list[Hit] = []
    for rule in RULES:
        if rule.evidence == "spdx-line" and not spdx_lines:
            continue
        if not any(present.setdefault(key, key in lowered) for key in rule.keys):
            continue
        hits.extend(_rule_hits(rule, text))
    # Ids inside an SPDX line ("MIT OR Apache-2.0") are that line's, not statements of their own.
    # SPDX lines never overlap (each runs to its line's end): find a hit's line by bisection.
    lines = sorted((h.start, h.end) for h in hits if h.evidence == "spdx-line")
    if lines:
        starts = [start for start, _ in lines]
        hits = [h for h in hits if h.evidence == "spdx-line" or not _inside(h.start, starts, lines)]
    hits.sort(key=lambda h: h.start)
    return _refine(hits, prefer_or_later=prefer_or_later)


def _rule_hits(rule: Rule, text: str) -> list[Hit]:
    """What one rule finds in ``text``: at most :data:`_HITS_PER_RULE` statements, from at most
    :data:`_MATCHES_PER_RULE` matches (a text repeating a licence's name adds nothing after a
    few, and each match costs a handler call)."""
    hits: list[Hit] = []
    for n, match in enumerate(rule.pattern.finditer(text)):
        if n >= _MATCHES_PER_RULE or len(hits) >= _HITS_PER_RULE:
            break
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
    return hits


def _inside(position: int, starts: list[int], spans: list[tuple[int, int]]) -> bool:
    i = bisect_right(starts, position) - 1
    return i >= 0 and position < spans[i][1]


def best(hits: list[Hit]) -> Hit | None:
    return max(hits, key=lambda h: h.score) if hits else None  # max keeps the first of equals


def normalise_spdx(expression: str) -> str:
    """Normalise a stated licence to an SPDX expression; ``NOASSERTION`` if it names none.

    Takes SPDX expressions in any case ("mit or apache-2.0" -> "MIT OR Apache-2.0"), deprecated
    ids ("GPL-2.0+" -> "GPL-2.0-or-later"), a whole SPDX line ("SPDX-License-Identifier: MIT")
    and the free-form names dumps and READMEs use ("MIT License", "GPLv3", "CC BY-NC-SA 3.0",
    "Public Domain"). Short statements (all real ones) are cached.
    """
    text = " ".join(str(expression or "").split()).strip("\"'` ")
    prefix = _SPDX_PREFIX.match(text)
    if prefix:
        text = text[prefix.end() :]
    if len(text) > _EXPRESSION_MAX:
        return _scanned(text)
    return _normalised(text)


@lru_cache(maxsize=4096)
def _normalised(text: str) -> str:
    if text.lower().strip(" .") in _NOTHING_STATED:
        return NOASSERTION
    known = lookup_id(text.rstrip("."))
    if known is not None:
        return known
    rendered = normalise_expression(text)
    if rendered is not None:
        return rendered
    return _scanned(text)


def _scanned(text: str) -> str:
    hit = best(scan(text, spdx_lines=False))
    return hit.spdx if hit is not None else NOASSERTION
