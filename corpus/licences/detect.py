"""The public detectors: licences stated in code, a LICENSE file, a dump's field, and the decision."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from corpus.glsl import comment_texts
from corpus.licences.comments import clean_comments, may_state_licence
from corpus.licences.scan import Hit, best, normalise_spdx, scan
from corpus.licences.verdicts import (
    MATCHED_TEXT_MAX,
    NOASSERTION,
    NONE_VERDICT,
    LicenceDecision,
    LicenceVerdict,
    make_verdict,
)

if TYPE_CHECKING:
    from corpus.records import ProgramRecord


def detect_in_code(codes: Iterable[str]) -> list[LicenceVerdict]:
    """Every licence stated in the comments of ``codes`` (one string per pass), in pass order.

    ``SPDX-License-Identifier`` lines give evidence ``spdx-line``, other statements
    ``code-comment``. A licence stated more than once is reported once, with its best score.
    """
    hits: list[tuple[int, Hit]] = []
    for index, code in enumerate(codes):
        comments = comment_texts(code) if code else None
        # Comments are about a tenth of real shader code: look for licence words there only.
        if not comments or not may_state_licence("\n".join(comments)):
            continue
        hits.extend((index, hit) for hit in scan(clean_comments(comments)))
    strongest: dict[str, tuple[int, Hit]] = {}
    for index, hit in hits:
        if hit.spdx not in strongest or hit.score > strongest[hit.spdx][1].score:
            strongest[hit.spdx] = (index, hit)
    ordered = sorted(strongest.values(), key=lambda item: (item[0], item[1].start))
    return [make_verdict(h.spdx, h.evidence, h.text, h.score) for _, h in ordered]


def detect_in_licence_file(text: str) -> LicenceVerdict | None:
    """The licence a repository's LICENSE/COPYING file states (evidence ``repo-licence-file``).

    The best-scoring statement wins, the first of equals: a full GPL text's own header
    ("Version 3, 29 June 2007") is GPL-3.0-only, not its how-to-apply appendix. A file holding
    only an SPDX expression ("MIT") is read as one.
    """
    if not text or not text.strip():
        return None
    hit = best(scan(text, prefer_or_later=False))
    if hit is not None:
        return make_verdict(hit.spdx, "repo-licence-file", hit.text, hit.score)
    stripped = text.strip()
    if len(stripped) <= 100:
        spdx = normalise_spdx(stripped)
        if spdx != NOASSERTION:
            return make_verdict(spdx, "repo-licence-file", " ".join(stripped.split()), 0.8)
    return None


def verdict_from_field(value: str | None) -> LicenceVerdict | None:
    """What a dump's own licence field claims (evidence ``dump-field``), or None if it says nothing."""
    return _verdict_from_declared(value, "dump-field", exact=0.9, loose=0.8)


def _verdict_from_declared(
    value: str | None, evidence: str, *, exact: float, loose: float
) -> LicenceVerdict | None:
    if value is None or not str(value).strip():
        return None
    stated = " ".join(str(value).split())
    spdx = normalise_spdx(stated)
    if spdx == NOASSERTION:
        return None
    return make_verdict(spdx, evidence, stated[:MATCHED_TEXT_MAX], exact if stated == spdx else loose)


def decide(
    codes: Iterable[str],
    *,
    dump_field: str | None = None,
    repo_licence_text: str | None = None,
    site_default: str | None = None,
) -> LicenceDecision:
    """Weigh all licence evidence for one program; see the module docstring for the order.

    ``codes`` holds one string per pass, the Image pass first where there is one (ties between
    equally confident code statements go to the first pass). ``site_default`` is an SPDX id
    such as ``SITE_DEFAULTS["shadertoy"]``.
    """
    code = detect_in_code(codes)
    repo = detect_in_licence_file(repo_licence_text) if repo_licence_text else None
    field = verdict_from_field(dump_field)
    site = _verdict_from_declared(site_default, "site-default", exact=0.5, loose=0.5)
    chosen: LicenceVerdict | None = None
    if code:
        spdx_lines = [v for v in code if v.evidence == "spdx-line"]
        confident = [v for v in code if v.score >= _CONFIDENT]
        if spdx_lines:
            chosen = spdx_lines[0]
        elif len(confident) > 1:
            chosen = _all_of(confident)
        else:
            chosen = max(code, key=lambda v: v.score)
    else:
        chosen = repo or field or site
    if chosen is None:
        return LicenceDecision(NONE_VERDICT, (NONE_VERDICT,))
    others = [v for v in (*code, repo, field, site) if v is not None and v is not chosen]
    return LicenceDecision(chosen, (chosen, *others))


#: Code statements at least this sure (a licence named with its version, its URL, its text) all
#: bind the program when there are several; vaguer ones only count alone.
_CONFIDENT = 0.85


def _all_of(verdicts: list[LicenceVerdict]) -> LicenceVerdict:
    """Several licences stated in the code (MIT for one part, GPL-3.0 for another): the program
    is under all of them, so the class is the most restrictive one's. Guessing which one is
    "the" licence would let a GPL or NC part into a permissive snapshot."""
    parts = [f"({v.spdx})" if " OR " in v.spdx else v.spdx for v in verdicts]
    spdx = " AND ".join(dict.fromkeys(parts))
    text = "; ".join(v.matched_text for v in verdicts if v.matched_text)[:MATCHED_TEXT_MAX]
    return make_verdict(spdx, verdicts[0].evidence, text, min(v.score for v in verdicts))


def decide_for_record(record: ProgramRecord, site_default: str | None) -> LicenceDecision:
    """:func:`decide` for a record: its passes (Image first), licence field and LICENSE text."""
    passes = sorted(record.passes, key=lambda p: p.type != "image")
    return decide(
        [p.code for p in passes],
        dump_field=record.licence_field,
        repo_licence_text=record.repo_licence_text,
        site_default=site_default,
    )
