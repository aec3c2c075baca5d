"""Licence classes: the class of an SPDX id, and of an expression built from ids.

Ids are classed by the category license-expression's bundled licence database gives them
(:data:`CATEGORY_CLASSES`), except where :data:`CLASS_OVERRIDES` says otherwise and why.
"""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from corpus.errors import ImageProgramsError

# Least restrictive first: AND takes the most restrictive class, OR the least.
_RANK = {
    "public-domain": 0,
    "permissive": 1,
    "copyleft": 2,
    "noncommercial": 3,
    "unknown": 4,
    "proprietary": 5,
}
EXPR_TOKEN = re.compile(r"\(|\)|[^\s()]+")
#: Parentheses nested deeper than this make no real expression (and would exhaust the stack).
_MAX_NESTING = 32

#: How the categories of license-expression's bundled licence database (ScanCode's LicenseDB,
#: one category per licence) map to our classes. Ids the database does not know are ``unknown``.
CATEGORY_CLASSES: dict[str, str] = {
    "Permissive": "permissive",
    "Public Domain": "public-domain",
    "Copyleft": "copyleft",
    # weak copyleft (LGPL, MPL, EPL, CC-BY-SA): modified files still carry share-alike terms
    "Copyleft Limited": "copyleft",
    # code to read without an open grant (BUSL, SSPL, Elastic); its NC and ND licences: overrides
    "Source-available": "proprietary",
    "Proprietary Free": "proprietary",
    "Commercial": "proprietary",
    # field-of-use limits (no military or nuclear use, Hippocratic): not an open grant either
    "Free Restricted": "proprietary",
    # not a copyright licence of the code: a contributor agreement, a patent grant, "any OSI"
    "CLA": "unknown",
    "Patent License": "unknown",
    "Unstated License": "unknown",
}


@dataclass(frozen=True)
class ClassOverride:
    """Where our class of an id differs from its database category, or the id is our own."""

    ids: str  # a regular expression that must match the whole id, case ignored
    licence_class: str
    reason: str


#: Checked before the database, first match wins. Each says why it departs from the database.
CLASS_OVERRIDES: tuple[ClassOverride, ...] = (
    ClassOverride(
        r"(LicenseRef-)?CC-BY-NC(-SA|-ND)?(-.+)?|LicenseRef-scancode-cc-(by-)?nc(-.+)?",
        "noncommercial",
        "the database files the CC BY-NC family as Source-available; NC forbids commercial use, "
        "which is exactly our noncommercial class",
    ),
    ClassOverride(
        r"PolyForm-Noncommercial-.+|NCGL-UK-.+|LicenseRef-scancode-dl-de-by-nc-.+",
        "noncommercial",
        "source-available or restricted in the database, but the one restriction is noncommercial use",
    ),
    ClassOverride(
        r"(LicenseRef-)?CC-BY-ND(-.+)?",
        "proprietary",
        "no-derivatives: no right to adapt the code, so nothing a corpus may change or render from",
    ),
    ClassOverride(
        r"Artistic-2\.0|ClArtistic",
        "permissive",
        "the database says Copyleft Limited, but these put no share-alike terms on a renamed "
        "modified version or on a larger work (OSI and FSF approved); in practice permissive",
    ),
    ClassOverride(
        r"WTFPL",
        "permissive",
        "the database says Public Domain, but WTFPL is a licence (a grant), not a dedication",
    ),
    ClassOverride(
        r"LicenseRef-CC-BY", "permissive", "our id for CC BY named without a version: every version is"
    ),
    ClassOverride(
        r"LicenseRef-CC-BY-SA", "copyleft", "our id for CC BY-SA named without a version: share-alike"
    ),
    ClassOverride(
        r"LicenseRef-BSD", "permissive", "our id for a BSD licence named without its clauses: all are"
    ),
    ClassOverride(r"LicenseRef-public-domain", "public-domain", "our id for public-domain wording"),
    ClassOverride(
        r"LicenseRef-all-rights-reserved",
        "proprietary",
        "our id for 'all rights reserved' (or a prohibition) with no grant",
    ),
    ClassOverride(
        r"LicenseRef-noncommercial", "noncommercial", "our id for 'not for commercial use' wording"
    ),
    ClassOverride(r"NOASSERTION|NONE", "unknown", "SPDX's words for no licence stated"),
)
_OVERRIDE_PATTERNS = tuple((re.compile(o.ids, re.IGNORECASE), o.licence_class) for o in CLASS_OVERRIDES)


def _licence_database_path() -> Path:
    """license-expression's bundled licence index, found without importing the package."""
    spec = importlib.util.find_spec("license_expression")
    if spec is None or not spec.submodule_search_locations:
        raise ImageProgramsError(
            "the license-expression package is not installed", hint="pip install -e . (it is a dependency)"
        )
    return Path(spec.submodule_search_locations[0]) / "data" / "scancode-licensedb-index.json"


@lru_cache(maxsize=1)
def database_categories() -> dict[str, str]:
    """Upper-cased SPDX id (and ``LicenseRef-scancode-…`` id) -> the database's category.

    Read on first use (about 10 ms), never at import: most commands class no licence.
    Licence exceptions (``WITH`` operands) are left out; a current entry wins over a deprecated one.
    """
    entries = json.loads(_licence_database_path().read_text(encoding="utf-8"))
    categories: dict[str, str] = {}
    for entry in sorted(entries, key=lambda e: bool(e.get("is_deprecated")), reverse=True):
        if entry.get("is_exception") or not entry.get("category"):
            continue
        for ident in [entry.get("spdx_license_key"), *(entry.get("other_spdx_license_keys") or [])]:
            if ident:
                categories[ident.upper()] = entry["category"]
    return categories


@lru_cache(maxsize=1)
def database_ids() -> dict[str, str]:
    """Upper-cased SPDX id (or an alias the database lists for it) -> the SPDX id, for every
    licence in license-expression's bundled database (exceptions and ``LicenseRef-`` keys left
    out). Read on first use, like :func:`database_categories`; a current entry wins."""
    entries = json.loads(_licence_database_path().read_text(encoding="utf-8"))
    ids: dict[str, str] = {}
    for entry in sorted(entries, key=lambda e: bool(e.get("is_deprecated")), reverse=True):
        spdx = entry.get("spdx_license_key")
        if entry.get("is_exception") or not spdx or spdx.startswith("LicenseRef-"):
            continue
        for ident in [spdx, *(entry.get("other_spdx_license_keys") or [])]:
            if ident and not ident.startswith("LicenseRef-") and " " not in ident:
                ids[ident.upper()] = spdx
    return ids


def _id_class(ident: str) -> str:
    for pattern, cls in _OVERRIDE_PATTERNS:
        if pattern.fullmatch(ident):
            return cls
    categories = database_categories()
    upper = ident.upper()
    category = categories.get(upper) or categories.get(upper.rstrip("+"))
    return CATEGORY_CLASSES.get(category, "unknown") if category else "unknown"


def _parse_or(tokens: list[str], pos: int, depth: int = 0) -> tuple[str, int]:
    if depth > _MAX_NESTING:
        raise ValueError("parentheses nested too deep")
    cls, pos = _parse_and(tokens, pos, depth)
    while pos < len(tokens) and tokens[pos].upper() == "OR":
        other, pos = _parse_and(tokens, pos + 1, depth)
        cls = min(cls, other, key=_RANK.__getitem__)
    return cls, pos


def _parse_and(tokens: list[str], pos: int, depth: int) -> tuple[str, int]:
    cls, pos = _parse_atom(tokens, pos, depth)
    while pos < len(tokens) and tokens[pos].upper() == "AND":
        other, pos = _parse_atom(tokens, pos + 1, depth)
        cls = max(cls, other, key=_RANK.__getitem__)
    return cls, pos


def _parse_atom(tokens: list[str], pos: int, depth: int) -> tuple[str, int]:
    token = tokens[pos]
    if token == "(":
        cls, pos = _parse_or(tokens, pos + 1, depth + 1)
        if tokens[pos] != ")":
            raise ValueError("unbalanced parenthesis")
        return cls, pos + 1
    if token == ")" or token.upper() in ("AND", "OR", "WITH"):
        raise ValueError(f"unexpected {token!r}")
    cls = _id_class(token)
    pos += 1
    if pos < len(tokens) and tokens[pos].upper() == "WITH":
        if pos + 1 >= len(tokens):
            raise ValueError("WITH needs an exception after it")
        pos += 2
    return cls, pos


@lru_cache(maxsize=4096)
def licence_class(spdx: str) -> str:
    """Class of an SPDX expression: with AND the most restrictive part's, with OR the least.

    ``NOASSERTION``, unknown ids and malformed expressions are ``unknown``.
    """
    tokens = EXPR_TOKEN.findall(spdx or "")
    if not tokens:
        return "unknown"
    try:
        cls, pos = _parse_or(tokens, 0)
    except (IndexError, ValueError):
        return "unknown"
    return cls if pos == len(tokens) else "unknown"
