"""What licence detection returns: one piece of evidence (a verdict), a decision, and their names."""

from __future__ import annotations

from dataclasses import dataclass

from corpus.licences.classes import licence_class

EVIDENCE_KINDS = ("code-comment", "spdx-line", "repo-licence-file", "dump-field", "site-default")

NOASSERTION = "NOASSERTION"
PUBLIC_DOMAIN = "LicenseRef-public-domain"
ALL_RIGHTS_RESERVED = "LicenseRef-all-rights-reserved"
NONCOMMERCIAL = "LicenseRef-noncommercial"

#: Default terms per catalogue source; ``None`` where the site grants nothing.
SITE_DEFAULTS: dict[str, str | None] = {"shadertoy": "CC-BY-NC-SA-3.0", "glslsandbox": None}

MATCHED_TEXT_MAX = 300


@dataclass(frozen=True)
class LicenceVerdict:
    """One piece of licence evidence, or the verdict chosen from all of them.

    ``spdx`` is a normalised SPDX expression (``NOASSERTION`` when nothing states one);
    ``evidence`` is one of :data:`EVIDENCE_KINDS`, or ``"none"`` for the NOASSERTION verdict;
    ``score`` is a 0..1 confidence: 1.0 for an SPDX line, about 0.95 for a licence's full name or
    text, 0.9 for its URL, 0.7 and below for vague wording.
    """

    spdx: str
    licence_class: str
    evidence: str
    matched_text: str | None
    score: float


@dataclass(frozen=True)
class LicenceDecision:
    """The verdict :func:`decide` chose and every piece of evidence found, chosen first."""

    chosen: LicenceVerdict
    candidates: tuple[LicenceVerdict, ...]


NONE_VERDICT = LicenceVerdict(NOASSERTION, "unknown", "none", None, 0.0)


def make_verdict(spdx: str, evidence: str, matched_text: str | None, score: float) -> LicenceVerdict:
    return LicenceVerdict(
        spdx, licence_class(spdx), evidence, matched_text, round(min(max(score, 0.0), 1.0), 3)
    )
