"""The ScanCode engine: slow and thorough, to audit the fast detector (the ``scancode`` extra)."""

from __future__ import annotations

from collections.abc import Iterable

from corpus.errors import ImageProgramsError
from corpus.licences.comments import comment_text
from corpus.licences.scan import normalise_spdx
from corpus.licences.verdicts import MATCHED_TEXT_MAX, NOASSERTION, LicenceVerdict, make_verdict


def detect_with_scancode(codes: Iterable[str]) -> list[LicenceVerdict]:
    """Like :func:`detect_in_code`, with ScanCode's licence index instead of our patterns.

    Far slower (seconds to load the index, milliseconds a program), but it knows thousands of
    licence texts; use it to audit the fast detector. Needs the ``scancode`` extra.
    """
    try:
        import scancode  # noqa: F401  (the toolkit that ships licensedcode)
        from licensedcode.cache import build_spdx_license_expression, get_index
    except ImportError as exc:
        raise ImageProgramsError(
            "ScanCode is not installed", hint="pip install 'imageprograms[scancode]'"
        ) from exc
    index = get_index()
    verdicts: dict[str, LicenceVerdict] = {}
    for code in codes:
        text = comment_text(code or "")
        if not text.strip():
            continue
        for match in index.match(query_string=text):
            spdx = normalise_spdx(build_spdx_license_expression(match.rule.license_expression))
            if spdx == NOASSERTION:
                continue
            matched = " ".join(str(match.matched_text()).split())[:MATCHED_TEXT_MAX]
            verdict = make_verdict(spdx, "code-comment", matched, float(match.score()) / 100.0)
            if spdx not in verdicts or verdict.score > verdicts[spdx].score:
                verdicts[spdx] = verdict
    return list(verdicts.values())
