"""SPDX expressions: canonical form of a well-formed expression, through license-expression."""

from __future__ import annotations

import re
from functools import lru_cache

from corpus.licences.classes import EXPR_TOKEN
from corpus.licences.ids import lookup_id

_ID_CHARS = re.compile(r"[A-Za-z0-9.+:-]+")


@lru_cache(maxsize=1)
def _spdx_licensing():
    # Building the licensing object reads the whole SPDX list: do it once, and only when needed.
    from license_expression import get_spdx_licensing

    return get_spdx_licensing()


@lru_cache(maxsize=4096)
def _canonical_id(token: str) -> str | None:
    known = lookup_id(token)
    if known is not None:
        return known
    if token.lower().startswith("licenseref-"):
        return "LicenseRef-" + token[len("licenseref-") :]
    licensing = _spdx_licensing()
    try:
        parsed = licensing.parse(token)
    except Exception:  # license-expression raises several unrelated types on bad input
        return None
    if parsed is None or licensing.unknown_license_keys(parsed):
        return None
    return parsed.render()


def normalise_expression(text: str) -> str | None:
    """Canonical form of a well-formed SPDX expression (any case), or None if it is not one."""
    out: list[str] = []
    expect_operand, depth, after_with = True, 0, False
    for token in EXPR_TOKEN.findall(text):
        upper = token.upper()
        if token == "(":
            if not expect_operand:
                return None
            depth += 1
            out.append(token)
        elif token == ")":
            depth -= 1
            if expect_operand or depth < 0:
                return None
            out.append(token)
        elif upper in ("AND", "OR", "WITH"):
            if expect_operand:
                return None
            out.append(upper)
            expect_operand, after_with = True, upper == "WITH"
        else:
            if not expect_operand or not _ID_CHARS.fullmatch(token):
                return None
            ident = token if after_with else _canonical_id(token)
            if ident is None:
                return None
            out.append(ident)
            expect_operand = after_with = False
    if expect_operand or depth:
        return None
    if len(out) == 1:
        return out[0]
    licensing = _spdx_licensing()
    try:
        parsed = licensing.parse(" ".join(out))
    except Exception:  # license-expression raises several unrelated types on bad input
        return None
    unknown = [k for k in licensing.unknown_license_keys(parsed) if not k.lower().startswith("licenseref-")]
    return None if parsed is None or unknown else parsed.render()
