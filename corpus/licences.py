"""Licence detection: which licence a program's code, repository, dump or site states.

One step over plain records (no database): :func:`decide` weighs every piece of evidence and
returns a :class:`LicenceDecision` whose ``chosen`` verdict the catalogue stores.

Precedence, strongest first:

1. the code itself: an ``SPDX-License-Identifier`` line (evidence ``spdx-line``), else the
   highest-scoring licence statement in a comment of any pass (``code-comment``); ties go to the
   first pass given, so callers pass the Image pass first (:func:`decide_for_record` does);
2. the LICENSE/COPYING file of the repository the program came from (``repo-licence-file``);
3. what a dump's own licence field claims (``dump-field``): evidence, not a verdict, so any
   licence stated in the code wins over it;
4. the site's default terms (``site-default``): Shadertoy's is CC-BY-NC-SA-3.0, GLSL Sandbox has
   none;
5. nothing: ``NOASSERTION`` / ``unknown`` (evidence ``none``), legally all rights reserved.

Only comments (``//`` and ``/* */``) are read, never code, so a variable called ``mit`` states
nothing. The detector is built for crawl volumes: a keyword check on the lower-cased code
rejects most programs (most carry no licence comment) before any comment is extracted, and
detailed patterns map straight to canonical SPDX ids. The ``license-expression`` package is used
only by :func:`normalise_spdx`, for free-form fields and SPDX lines, and its results are cached.

Identifiers outside the SPDX list: ``LicenseRef-public-domain`` (public-domain wording),
``LicenseRef-all-rights-reserved`` ("All rights reserved" with no grant), ``LicenseRef-noncommercial``
("not for commercial use" wording), and, for a licence named without its version,
``LicenseRef-BSD`` and ``LicenseRef-CC-BY[-NC][-SA|-ND]`` (scored lower; the class is still
known).

The class of an id comes from license-expression's bundled licence database (ScanCode's
LicenseDB, read on first use): :data:`CATEGORY_CLASSES` maps its categories to ours, and
:data:`CLASS_OVERRIDES` lists, each with its reason, where we differ (the CC BY-NC family is
``noncommercial``, CC BY-ND ``proprietary``, Artistic-2.0 ``permissive`` …) and our own ids.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from corpus.errors import ImageProgramsError
from corpus.filters import LICENCE_CLASSES  # defined there so the CLI imports it cheaply

if TYPE_CHECKING:
    from corpus.records import ProgramRecord

__all__ = [
    "ALL_RIGHTS_RESERVED",
    "CATEGORY_CLASSES",
    "CLASS_OVERRIDES",
    "EVIDENCE_KINDS",
    "LICENCE_CLASSES",
    "NOASSERTION",
    "NONCOMMERCIAL",
    "PUBLIC_DOMAIN",
    "SITE_DEFAULTS",
    "ClassOverride",
    "LicenceDecision",
    "LicenceVerdict",
    "database_categories",
    "decide",
    "decide_for_record",
    "detect_in_code",
    "detect_in_licence_file",
    "detect_with_scancode",
    "licence_class",
    "normalise_spdx",
    "verdict_from_field",
]


EVIDENCE_KINDS = ("code-comment", "spdx-line", "repo-licence-file", "dump-field", "site-default")

NOASSERTION = "NOASSERTION"
PUBLIC_DOMAIN = "LicenseRef-public-domain"
ALL_RIGHTS_RESERVED = "LicenseRef-all-rights-reserved"
NONCOMMERCIAL = "LicenseRef-noncommercial"

#: Default terms per catalogue source; ``None`` where the site grants nothing.
SITE_DEFAULTS: dict[str, str | None] = {"shadertoy": "CC-BY-NC-SA-3.0", "glslsandbox": None}

_MATCHED_TEXT_MAX = 300


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


_NONE_VERDICT = LicenceVerdict(NOASSERTION, "unknown", "none", None, 0.0)


# --- licence classes --------------------------------------------------------------------------

# Least restrictive first: AND takes the most restrictive class, OR the least.
_RANK = {
    "public-domain": 0,
    "permissive": 1,
    "copyleft": 2,
    "noncommercial": 3,
    "unknown": 4,
    "proprietary": 5,
}
_EXPR_TOKEN = re.compile(r"\(|\)|[^\s()]+")

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


def _id_class(ident: str) -> str:
    for pattern, cls in _OVERRIDE_PATTERNS:
        if pattern.fullmatch(ident):
            return cls
    categories = database_categories()
    upper = ident.upper()
    category = categories.get(upper) or categories.get(upper.rstrip("+"))
    return CATEGORY_CLASSES.get(category, "unknown") if category else "unknown"


def _parse_or(tokens: list[str], pos: int) -> tuple[str, int]:
    cls, pos = _parse_and(tokens, pos)
    while pos < len(tokens) and tokens[pos].upper() == "OR":
        other, pos = _parse_and(tokens, pos + 1)
        cls = min(cls, other, key=_RANK.__getitem__)
    return cls, pos


def _parse_and(tokens: list[str], pos: int) -> tuple[str, int]:
    cls, pos = _parse_atom(tokens, pos)
    while pos < len(tokens) and tokens[pos].upper() == "AND":
        other, pos = _parse_atom(tokens, pos + 1)
        cls = max(cls, other, key=_RANK.__getitem__)
    return cls, pos


def _parse_atom(tokens: list[str], pos: int) -> tuple[str, int]:
    token = tokens[pos]
    if token == "(":
        cls, pos = _parse_or(tokens, pos + 1)
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
    tokens = _EXPR_TOKEN.findall(spdx or "")
    if not tokens:
        return "unknown"
    try:
        cls, pos = _parse_or(tokens, 0)
    except (IndexError, ValueError):
        return "unknown"
    return cls if pos == len(tokens) else "unknown"


# --- canonical ids ----------------------------------------------------------------------------

_CC_VERSIONS = ("1.0", "2.0", "2.5", "3.0", "4.0")
_CC_VARIANTS = ("", "-SA", "-ND", "-NC", "-NC-SA", "-NC-ND")
_GPL_VERSIONS = {"GPL": ("1.0", "2.0", "3.0"), "LGPL": ("2.0", "2.1", "3.0"), "AGPL": ("1.0", "3.0")}
# A GPL-family licence named without a version lets the reader pick any version (GPL-2.0 s. 9).
_GPL_FIRST = {"GPL": "1.0", "LGPL": "2.0", "AGPL": "3.0"}
_MPL_VERSIONS = ("1.0", "1.1", "2.0")


def _build_id_table() -> dict[str, str]:
    table: dict[str, str] = {}
    simple = (
        "MIT",
        "MIT-0",
        "ISC",
        "Zlib",
        "0BSD",
        "BSD-2-Clause",
        "BSD-3-Clause",
        "BSD-4-Clause",
        "Apache-1.0",
        "Apache-1.1",
        "Apache-2.0",
        "Unlicense",
        "WTFPL",
        "CC0-1.0",
        "BSL-1.0",
        *(f"MPL-{v}" for v in _MPL_VERSIONS),
        PUBLIC_DOMAIN,
        ALL_RIGHTS_RESERVED,
        NONCOMMERCIAL,
        "LicenseRef-BSD",
    )
    for ident in simple:
        table[ident.lower()] = ident
    for variant in _CC_VARIANTS:
        table[f"licenseref-cc-by{variant.lower()}"] = f"LicenseRef-CC-BY{variant}"
        for version in _CC_VERSIONS:
            ident = f"CC-BY{variant}-{version}"
            table[ident.lower()] = ident
    for family, versions in _GPL_VERSIONS.items():
        for version in versions:
            only, later = f"{family}-{version}-only", f"{family}-{version}-or-later"
            table[only.lower()] = only
            table[later.lower()] = later
            table[f"{family}-{version}".lower()] = only
            table[f"{family}-{version}+".lower()] = later
    table.update(
        {
            "public domain": PUBLIC_DOMAIN,
            "public-domain": PUBLIC_DOMAIN,
            "publicdomain": PUBLIC_DOMAIN,
            "pd": PUBLIC_DOMAIN,
            "licenseref-scancode-public-domain": PUBLIC_DOMAIN,
            "all rights reserved": ALL_RIGHTS_RESERVED,
            "all-rights-reserved": ALL_RIGHTS_RESERVED,
            "proprietary": ALL_RIGHTS_RESERVED,
            "licenseref-scancode-proprietary-license": ALL_RIGHTS_RESERVED,
            "noncommercial": NONCOMMERCIAL,
            "non-commercial": NONCOMMERCIAL,
            "bsd": "LicenseRef-BSD",
            "cc0": "CC0-1.0",
            "mit license": "MIT",
            "the mit license": "MIT",
        }
    )
    return table


#: Lower-cased spelling -> canonical id, for every id the detector emits and a few aliases.
_ID_TABLE = _build_id_table()
_VAGUE_REFS = {v for v in _ID_TABLE.values() if v == "LicenseRef-BSD" or v.startswith("LicenseRef-CC-")}


def _lookup_id(text: str) -> str | None:
    return _ID_TABLE.get(" ".join(text.lower().split()))


# --- rules ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Hit:
    spdx: str
    score: float
    start: int
    end: int
    text: str
    evidence: str
    vague: bool = False


# A handler gets the match and the whole text; returns (spdx, score[, vague]) or None.
_Handler = Callable[[re.Match[str], str], "tuple[str, float] | tuple[str, float, bool] | None"]


@dataclass(frozen=True)
class _Rule:
    keys: tuple[str, ...]  # the rule runs only when one of these occurs in the lower-cased text
    pattern: re.Pattern[str]
    handler: _Handler
    evidence: str = "code-comment"


def _fixed(spdx: str, score: float, vague: bool = False) -> _Handler:
    return lambda match, text: (spdx, score, vague)


_RULES: list[_Rule] = []


def _rule(keys: tuple[str, ...], pattern: str, flags: int = re.IGNORECASE, evidence: str = "code-comment"):
    def register(handler: _Handler) -> _Handler:
        _RULES.append(_Rule(keys, re.compile(pattern, flags), handler, evidence))
        return handler

    return register


def _add(keys: tuple[str, ...], pattern: str, spdx: str, score: float, flags: int = re.IGNORECASE) -> None:
    _RULES.append(_Rule(keys, re.compile(pattern, flags), _fixed(spdx, score)))


@_rule(("spdx-license-identifier",), r"SPDX-License-Identifier[ \t]*:[ \t]*([^\n]*)", evidence="spdx-line")
def _spdx_line(match: re.Match[str], text: str):
    spdx = normalise_spdx(match.group(1).strip().rstrip("*/ \t"))
    return None if spdx == NOASSERTION else (spdx, 1.0)


# MIT, and MIT-0 (the same grant without the notice condition).
@_rule(("hereby",), r"permission\s+is\s+hereby\s+granted,?\s+free\s+of\s+charge")
def _mit_grant(match: re.Match[str], text: str):
    window = text[match.end() : match.end() + 800]
    if re.search(r"furnished\s+to\s+do\s+so\s*\.", window, re.I) and not re.search(
        r"subject\s+to\s+the\s+following\s+conditions", window, re.I
    ):
        return "MIT-0", 0.95
    return "MIT", 0.95


@_rule(("licen",), r"MIT(?<!\wMIT)(?:\s*\(MIT\))?[\s-]+licen[cs](e|ed)\b")
def _mit_name(match: re.Match[str], text: str):
    return "MIT", 0.95 if match.group(1).lower() == "e" else 0.85


@_rule(("mit",), r"MIT(?<!\wMIT)(?!\w)", flags=0)
def _mit_alone(match: re.Match[str], text: str):
    # "MIT" on a line of its own (or "The MIT."), the shortest header there is.
    start = text.rfind("\n", 0, match.start()) + 1
    end = text.find("\n", match.end())
    line = text[start : end if end >= 0 else len(text)].strip()
    return ("MIT", 0.7) if re.fullmatch(r"(?:the\s+)?MIT\.?", line, re.I) else None


# "License: X", "licensed under the X", "license X" where X is an id we know.
@_rule(
    ("licen",),
    r"\blicen[cs](?:e[ds]?|ing)?\b[ \t]*(?:[:=]|-(?=\s)|\bunder\b(?:\s+the)?(?:\s+terms\s+of(?:\s+the)?)?"
    r"|\bas\b|\bis\b)?[ \t]*\(?([A-Za-z0-9][A-Za-z0-9.+-]*)",
)
def _licence_named(match: re.Match[str], text: str):
    spdx = _lookup_id(match.group(1).rstrip(".-"))
    if spdx is None:
        return None
    return (spdx, 0.7, True) if spdx in _VAGUE_REFS else (spdx, 0.9)


@_rule(
    ("opensource.org",),
    r"opensource\.org/licenses/([A-Za-z0-9.+-]+?)(?:-license)?(?:\.php|\.html)?(?![\w.+-])",
)
def _osi_url(match: re.Match[str], text: str):
    spdx = _lookup_id(match.group(1))
    return None if spdx is None else (spdx, 0.9)


# BSD: count the clauses of the text itself.
@_rule(("redistribution",), r"redistribution\s+and\s+use\s+in\s+source\s+and\s+binary\s+forms")
def _bsd_text(match: re.Match[str], text: str):
    window = text[match.end() : match.end() + 3000]
    if re.search(r"advertising\s+materials", window, re.I):
        return "BSD-4-Clause", 0.95
    if re.search(r"neither\s+the\s+name|may\s+not\s+be\s+used\s+to\s+endorse", window, re.I):
        return "BSD-3-Clause", 0.95
    return "BSD-2-Clause", 0.95


@_rule(("bsd",), r"\bBSD[\s-]*([234])[\s-]*clause\b|\b([234])[\s-]*clause[\s-]+BSD\b")
def _bsd_clauses(match: re.Match[str], text: str):
    return f"BSD-{match.group(1) or match.group(2)}-Clause", 0.95


@_rule(("bsd",), r"\b(new|modified|revised|simplified|freebsd)[\s-]+BSD\b")
def _bsd_nickname(match: re.Match[str], text: str):
    three = match.group(1).lower() in ("new", "modified", "revised")
    return ("BSD-3-Clause" if three else "BSD-2-Clause"), 0.85


_RULES.append(
    _Rule(
        ("bsd",),
        re.compile(
            r"\bBSD[\s-]+(?:style[\s-]+)?licen[cs]e[ds]?\b|\blicen[cs]ed\s+under\s+(?:the\s+|a\s+)?BSD\b",
            re.I,
        ),
        _fixed("LicenseRef-BSD", 0.7, vague=True),
    )
)


# Apache.
def _apache_id(version: str | None) -> str | None:
    if version in (None, "2", "2.0"):
        return "Apache-2.0"
    return {"1": "Apache-1.0", "1.0": "Apache-1.0", "1.1": "Apache-1.1"}.get(version)


@_rule(("apache",), r"\bapache\s+licen[cs]e(?:\s*,?\s*(?:version\s*|v\.?\s*)?(\d(?:\.\d)?)(?![\d.]\d))?")
def _apache_name(match: re.Match[str], text: str):
    spdx = _apache_id(match.group(1))
    if spdx is None:
        return None
    # Apache 1.x is long extinct: an unversioned mention means 2.0, but say so with less confidence.
    return (spdx, 0.95) if match.group(1) else (spdx, 0.75, True)


@_rule(("apache",), r"\bapache[\s-]*v?(2\.0|2|1\.1)\b")
def _apache_short(match: re.Match[str], text: str):
    spdx = _apache_id(match.group(1))
    return None if spdx is None else (spdx, 0.9)


@_rule(("apache.org",), r"apache\.org/licenses/LICENSE-(\d\.\d)")
def _apache_url(match: re.Match[str], text: str):
    spdx = _apache_id(match.group(1))
    return None if spdx is None else (spdx, 0.9)


# Zlib, ISC / 0BSD.
_add(("altered",), r"altered\s+source\s+versions\s+must\s+be\s+plainly\s+marked", "Zlib", 0.95)
_add(("misrepresented",), r"origin\s+of\s+this\s+software\s+must\s+not\s+be\s+misrepresented", "Zlib", 0.9)
_add(("zlib",), r"\bzlib(?:\s*/\s*libpng)?[\s-]+licen[cs]e", "Zlib", 0.95)
_add(("isc",), r"\bISC\s+licen[cs]e", "ISC", 0.95)


@_rule(
    ("permission",),
    r"permission\s+to\s+use,\s*copy,\s*modify,\s*and(?:/or)?\s+distribute\s+this\s+software\s+for\s+any"
    r"\s+purpose\s+with\s+or\s+without\s+fee\s+is\s+hereby\s+granted",
)
def _isc_grant(match: re.Match[str], text: str):
    window = text[match.end() : match.end() + 300]
    notice = re.search(r"provided\s+that\s+the\s+above\s+copyright\s+notice", window, re.I)
    return ("ISC" if notice else "0BSD"), 0.95


# Unlicense, WTFPL, CC0.
_add(
    ("unencumbered",),
    r"free\s+and\s+unencumbered\s+software\s+released\s+into\s+the\s+public\s+domain",
    "Unlicense",
    0.95,
)
_add(("unlicense",), r"\b(?:the\s+)?unlicense\b(?:\.org)?", "Unlicense", 0.9)
_add(("wtfpl",), r"\bWTFPL\b", "WTFPL", 0.9)
_add(("want",), r"do\s+what\s+the\s+\S{1,10}\s+you\s+want\s+to\s+public\s+licen[cs]e", "WTFPL", 0.95)
_add(("publicdomain",), r"creativecommons\.org/publicdomain/zero/1\.0", "CC0-1.0", 0.9)
_add(("publicdomain",), r"creativecommons\.org/publicdomain/mark/1\.0", PUBLIC_DOMAIN, 0.85)


@_rule(("cc0",), r"\bCC0\b((?:[\s-]*(?:v\s*)?1\.0)?(?:\s+universal)?)")
def _cc0(match: re.Match[str], text: str):
    return "CC0-1.0", 0.95 if match.group(1).strip() else 0.85


# Creative Commons BY family.
_CC_ELEMENT = re.compile(r"non[\s-]?commercial|share[\s-]?alike|no[\s-]?deriv\w*|\bnc\b|\bsa\b|\bnd\b")


def _cc_id(elements: str, version: str | None) -> tuple[str, bool]:
    nc = sa = nd = False
    for word in _CC_ELEMENT.findall(elements.lower()):
        if word == "nc" or word.startswith("non"):
            nc = True
        elif word == "sa" or word.startswith("share"):
            sa = True
        else:
            nd = True
    ident = "CC-BY" + ("-NC" if nc else "") + ("-SA" if sa else "-ND" if nd else "")
    if version in _CC_VERSIONS:
        return f"{ident}-{version}", False
    return f"LicenseRef-{ident}", True


@_rule(
    ("attribution",),
    r"(?:(?P<cc>\bcreative\s+commons|\bcc\b)[\s:,-]*(?:licen[cs]e[\s:,-]*)?\(?\s*)?\battribution"
    r"(?P<el>(?:[\s-]+(?:non[\s-]?commercial|share[\s-]?alike|no[\s-]?deriv(?:ative)?s?))*)"
    r"(?:\s+licen[cs]e)?(?:[\s,]*(?:version\s*|v\.?\s*)?(?P<ver>\d\.\d)(?!\d))?"
    r"(?P<q>\s+(?:international|unported|generic))?",
)
def _cc_long(match: re.Match[str], text: str):
    prefixed, version = match.group("cc") is not None, match.group("ver")
    # Bare "Attribution" is an ordinary word: without "Creative Commons" ask for a version too.
    if not prefixed and not (version and (match.group("q") or match.group("el"))):
        return None
    spdx, vague = _cc_id(match.group("el") or "", version)
    if vague:
        return spdx, 0.7, True
    return spdx, 0.95 if prefixed else 0.9


@_rule(
    ("cc by", "cc-by", "cc_by", "ccby", "cc (by", "creative"),
    r"(?:\bcc|\bcreative\s+commons)[\s_-]*\(?\s*by\b(?P<el>(?:[\s_-]+(?:nc|sa|nd)\b)*)"
    r"(?:[\s_-]*(?:v\.?\s*|version\s*)?(?P<ver>\d\.\d)(?!\d))?(?!\w)",
)
def _cc_short(match: re.Match[str], text: str):
    said = match.group(0)
    if not match.group("el") and not match.group("ver") and not (said.isupper() or "commons" in said.lower()):
        return None  # "cc by the author" is not a licence; a bare "CC BY" is, vaguely
    spdx, vague = _cc_id(match.group("el") or "", match.group("ver"))
    return (spdx, 0.7, True) if vague else (spdx, 0.95)


@_rule(
    ("creativecommons.org",),
    r"creativecommons\.org/licenses/(?P<el>by(?:-(?:nc|sa|nd))*)(?:/(?P<ver>\d\.\d))?",
)
def _cc_url(match: re.Match[str], text: str):
    spdx, vague = _cc_id(match.group("el").replace("-", " "), match.group("ver"))
    return (spdx, 0.7, True) if vague else (spdx, 0.9)


# GNU GPL, LGPL, AGPL.
def _gpl_id(family: str, version: str | None, later: bool, score: float):
    if version is not None and "." not in version:
        version += ".0"
    if version in _GPL_VERSIONS[family]:
        return f"{family}-{version}-{'or-later' if later else 'only'}", score
    return f"{family}-{_GPL_FIRST[family]}-or-later", 0.7, True


_IMMEDIATE_VERSION = re.compile(r"[\s,;:(-]*(?:v(?:ersion)?\.?\s*)?(\d(?:\.\d)?)(?![\d.]\d)", re.I)
_LATER_AFTER_VERSION = re.compile(
    r"\s*(?:of\s+the\s+licen[cs]e\s*)?(?:\+|,?\s*or\s+(?:\(at\s+your\s+option\)\s+)?(?:any\s+)?later)", re.I
)


@_rule(("gnu",), r"\bGNU\s+(?:(affero|lesser|library)\s+)?general\s+public\s+licen[cs]e")
def _gnu_name(match: re.Match[str], text: str):
    family = {None: "GPL", "affero": "AGPL", "lesser": "LGPL", "library": "LGPL"}[
        match.group(1) and match.group(1).lower()
    ]
    after = text[match.end() : match.end() + 300]
    immediate = _IMMEDIATE_VERSION.match(after)
    if immediate:
        version = immediate.group(1)
        later = bool(_LATER_AFTER_VERSION.match(after, immediate.end()))
    else:
        found = re.search(r"\bversion\s+(\d(?:\.\d)?)(?![\d.]\d)", after, re.I)
        version = found.group(1) if found else None
        later = bool(re.search(r"any\s+later\s+version|\bor\s+later\b", after, re.I))
    return _gpl_id(family, version, later, 0.95)


@_rule(
    ("gpl",),
    r"\b(?:GNU\s+)?([AL])?GPL(?:[\s-]*v?([123](?:\.[01])?)(?!\d)(\+|[\s-]*or[\s-]*later)?(?:-only)?)?(?![\w+])",
)
def _gpl_short(match: re.Match[str], text: str):
    family = (match.group(1) or "").upper() + "GPL"
    later = bool(match.group(3)) or bool(
        re.match(
            r"\s*,?\s*or\s+(?:\(at\s+your\s+option\)\s+)?any\s+later",
            text[match.end() : match.end() + 60],
            re.I,
        )
    )
    return _gpl_id(family, match.group(2), later, 0.9)


@_rule(("gnu.org",), r"gnu\.org/licenses/(?:old-licenses/)?([al]?gpl)(?:-(\d\.\d))?")
def _gnu_url(match: re.Match[str], text: str):
    family = match.group(1).upper()
    if match.group(2) is None:
        # The unversioned page always shows the latest version.
        return _gpl_id(family, "3.0", True, 0.8)
    return _gpl_id(family, match.group(2), False, 0.9)


# Mozilla.
@_rule(("mozilla",), r"mozilla\s+public\s+licen[cs]e(?:\s*,?\s*(?:version\s*|v\.?\s*)?(\d\.\d))?")
def _mpl_name(match: re.Match[str], text: str):
    version = match.group(1)
    if version in _MPL_VERSIONS:
        return f"MPL-{version}", 0.95
    return "MPL-2.0", 0.7, True


@_rule(
    ("mozilla.org", "mpl-", "mpl 1", "mpl 2", "mpl v", "mplv"),
    r"mozilla\.org/MPL/(\d\.\d)|\bMPL[\s-]*v?(\d\.\d)\b",
)
def _mpl_short(match: re.Match[str], text: str):
    version = match.group(1) or match.group(2)
    return (f"MPL-{version}", 0.9) if version in _MPL_VERSIONS else None


# Wording without a named licence.
@_rule(("public",), r"public(?<!\wpublic)[\s-]+domain\b")
def _public_domain(match: re.Match[str], text: str):
    before = text[max(0, match.start() - 40) : match.start()]
    if re.search(r"\bnot\s+(?:\w+\s+){0,3}$", before, re.I):
        return None
    strong = re.search(
        r"(?:released|dedicated|placed|put|given|donated|is|are|into|under|licen[cs]e[ds]?|:)\s*"
        r"(?:to\s+|into\s+|in\s+)?(?:the\s+)?$",
        before,
        re.I,
    )
    return PUBLIC_DOMAIN, 0.85 if strong else 0.6


_ARR_PLAIN, _ARR_PROHIBITION = 0.7, 0.75
_PROHIBITION_WORDS = tuple(
    f"{neg} {verb}"
    for neg in ("not", "n't")
    for verb in ("host", "display", "distribut", "redistribut", "share", "publish", "repost")
)
_add(("reserved",), r"\ball\s+rights\s+reserved\b", ALL_RIGHTS_RESERVED, _ARR_PLAIN)


# Authors who keep every right often say so in their own words: "I am the sole copyright
# owner", "you cannot host, display or distribute this".
@_rule(("copyright",), r"copyright\s+(?:owner|holder)")
def _sole_owner(match: re.Match[str], text: str):
    before = text[max(0, match.start() - 12) : match.start()]
    return (
        (ALL_RIGHTS_RESERVED, _ARR_PROHIBITION)
        if re.search(r"\b(?:sole|only|exclusive)\s+$", before, re.I)
        else None
    )


@_rule(_PROHIBITION_WORDS, r"(?:not|n't)\s+(?:host|display|distribute|redistribute|share|publish|repost)\b")
def _prohibition(match: re.Match[str], text: str):
    before = text[max(0, match.start() - 8) : match.start()]
    modal = re.search(r"(?:\b(?:may|must|can|shall|should|do)\s*|\bca|\bdo)$", before, re.I)
    return (ALL_RIGHTS_RESERVED, _ARR_PROHIBITION) if modal else None


_add(
    ("commercial",),
    r"(?<!commercial and )(?<!commercial or )(?<!commercial & )(?<!commercial/)(?<!commercial / )"
    r"\bnon[\s-]?commercial\s+(?:use|uses|usage|purposes?|projects?|applications?|only)\b"
    r"|\bnot\s+(?:be\s+)?(?:for|used\s+for|to\s+be\s+used\s+for|allowed\s+for|permitted\s+for)\s+(?:any\s+)?commercial"
    r"|\b(?:may|must|can|shall|should)\s*(?:not|n't)\s+(?:be\s+)?(?:use|used|sell|sold|include|included"
    r"|distribute|distributed)\b[^.;]{0,60}?(?<!non)(?<!non-)(?<!non )\bcommercial"
    r"(?!\s+(?:or|and|&|/)\s+non[\s-]?commercial)"
    r"|\b(?:cannot|can't|don't|do\s+not)\s+(?:use|sell|include|distribute)\b"
    r"[^.;]{0,60}?(?<!non)(?<!non-)(?<!non )\bcommercial"
    r"(?!\s+(?:or|and|&|/)\s+non[\s-]?commercial)"
    r"|\bno\s+commercial\s+(?:use|usage|purposes?)\b"
    r"|\bcommercial\s+(?:use|usage|purposes?)\s+(?:is\s+|are\s+)?(?:not\s+(?:allowed|permitted)|prohibited|forbidden)",
    NONCOMMERCIAL,
    0.7,
)


# --- scanning ---------------------------------------------------------------------------------


def _family(spdx: str) -> str:
    core = spdx[len("LicenseRef-") :] if spdx.startswith("LicenseRef-") else spdx
    core = re.sub(r"-(?:only|or-later)$", "", core)
    core = re.sub(r"-\d\.\d$", "", core)
    return "BSD" if core.startswith("BSD") else core.upper()


def _refine(hits: list[_Hit], *, prefer_or_later: bool) -> list[_Hit]:
    """Drop hits that another hit in the same text explains, then keep one hit per licence.

    "All rights reserved" before a grant is that grant's copyright line; "public domain" inside
    the Unlicense or CC0 is that licence; a licence named without its version is the versioned
    one named nearby. In code, "version 3, or any later version" refines a bare "GPLv3".
    """
    spdx_ids = {h.spdx for h in hits}
    kept: list[_Hit] = []
    for hit in hits:
        if hit.spdx == ALL_RIGHTS_RESERVED and (
            (hit.score <= _ARR_PLAIN and len(spdx_ids) > 1)
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


def _dedupe(hits: list[_Hit]) -> list[_Hit]:
    best: dict[str, _Hit] = {}
    for hit in hits:
        if hit.spdx not in best or hit.score > best[hit.spdx].score:
            best[hit.spdx] = hit
    return sorted(best.values(), key=lambda h: h.start)


def _scan(text: str, *, prefer_or_later: bool = True) -> list[_Hit]:
    lowered = text.lower()
    hits: list[_Hit] = []
    for rule in _RULES:
        if not any(key in lowered for key in rule.keys):
            continue
        for match in rule.pattern.finditer(text):
            found = rule.handler(match, text)
            if found is None:
                continue
            spdx, score, *vague = found
            matched = " ".join(match.group(0).split())[:_MATCHED_TEXT_MAX]
            hits.append(
                _Hit(
                    spdx, score, match.start(), match.end(), matched, rule.evidence, bool(vague and vague[0])
                )
            )
    # Ids inside an SPDX line ("MIT OR Apache-2.0") are that line's, not statements of their own.
    lines = [(h.start, h.end) for h in hits if h.evidence == "spdx-line"]
    if lines:
        hits = [h for h in hits if h.evidence == "spdx-line" or not any(s <= h.start < e for s, e in lines)]
    hits.sort(key=lambda h: h.start)
    return _refine(hits, prefer_or_later=prefer_or_later)


def _best(hits: list[_Hit]) -> _Hit | None:
    return max(hits, key=lambda h: h.score) if hits else None  # max keeps the first of equals


def _verdict(spdx: str, evidence: str, matched_text: str | None, score: float) -> LicenceVerdict:
    return LicenceVerdict(
        spdx, licence_class(spdx), evidence, matched_text, round(min(max(score, 0.0), 1.0), 3)
    )


# Every rule's pattern can only match text holding one of these (lower-cased) words, so comments
# without any of them state no licence; most programs stop here.
_PREFILTER_WORDS = (
    "licen",
    "spdx",
    "hereby",
    "redistribution",
    "reserved",
    "public",
    "unencumbered",
    "creative",
    "cc0",
    "cc-by",
    "cc by",
    "cc_by",
    "ccby",
    "cc (by",
    "attribution",
    "gnu",
    "gpl",
    "apache",
    "zlib",
    "altered",
    "misrepresented",
    "wtfpl",
    "bsd",
    "mozilla",
    "mpl-",
    "mpl 1",
    "mpl 2",
    "mpl v",
    "mplv",
    "commercial",
    "permission",
    "copyright",
    *_PROHIBITION_WORDS,
)
_MIT_WORD = re.compile(r"MIT(?<!\wMIT)(?!\w)")
_COMMENT = re.compile(r"//[^\n]*|/\*.*?(?:\*/|\Z)", re.DOTALL)
_BLOCK_LINE_PREFIX = re.compile(r"^[ \t]*\*+(?!/)[ \t]?", re.MULTILINE)


def _may_state_licence(comments: str) -> bool:
    lowered = comments.lower()
    for word in _PREFILTER_WORDS:
        if word in lowered:
            return True
    return "MIT" in comments and _MIT_WORD.search(comments) is not None


def _clean_comments(comments: list[str]) -> str:
    parts = []
    for comment in comments:
        if comment[1] == "/":
            parts.append(comment.lstrip("/"))
        else:
            body = comment[2:-2] if len(comment) >= 4 and comment.endswith("*/") else comment[2:]
            parts.append(_BLOCK_LINE_PREFIX.sub("", body))
    return "\n".join(parts)


def _comment_text(code: str) -> str:
    """The text of every comment in ``code``, markers stripped, one comment after another."""
    return _clean_comments(_COMMENT.findall(code))


# --- public detectors -------------------------------------------------------------------------


def detect_in_code(codes: Iterable[str]) -> list[LicenceVerdict]:
    """Every licence stated in the comments of ``codes`` (one string per pass), in pass order.

    ``SPDX-License-Identifier`` lines give evidence ``spdx-line``, other statements
    ``code-comment``. A licence stated more than once is reported once, with its best score.
    """
    hits: list[tuple[int, _Hit]] = []
    for index, code in enumerate(codes):
        comments = _COMMENT.findall(code) if code else None
        # Comments are about a tenth of real shader code: look for licence words there only.
        if not comments or not _may_state_licence("\n".join(comments)):
            continue
        hits.extend((index, hit) for hit in _scan(_clean_comments(comments)))
    best: dict[str, tuple[int, _Hit]] = {}
    for index, hit in hits:
        if hit.spdx not in best or hit.score > best[hit.spdx][1].score:
            best[hit.spdx] = (index, hit)
    ordered = sorted(best.values(), key=lambda item: (item[0], item[1].start))
    return [_verdict(h.spdx, h.evidence, h.text, h.score) for _, h in ordered]


def detect_in_licence_file(text: str) -> LicenceVerdict | None:
    """The licence a repository's LICENSE/COPYING file states (evidence ``repo-licence-file``).

    The best-scoring statement wins, the first of equals: a full GPL text's own header
    ("Version 3, 29 June 2007") is GPL-3.0-only, not its how-to-apply appendix. A file holding
    only an SPDX expression ("MIT") is read as one.
    """
    if not text or not text.strip():
        return None
    hit = _best(_scan(text, prefer_or_later=False))
    if hit is not None:
        return _verdict(hit.spdx, "repo-licence-file", hit.text, hit.score)
    stripped = text.strip()
    if len(stripped) <= 100:
        spdx = normalise_spdx(stripped)
        if spdx != NOASSERTION:
            return _verdict(spdx, "repo-licence-file", " ".join(stripped.split()), 0.8)
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
    return _verdict(spdx, evidence, stated[:_MATCHED_TEXT_MAX], exact if stated == spdx else loose)


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
        return LicenceDecision(_NONE_VERDICT, (_NONE_VERDICT,))
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
    text = "; ".join(v.matched_text for v in verdicts if v.matched_text)[:_MATCHED_TEXT_MAX]
    return _verdict(spdx, verdicts[0].evidence, text, min(v.score for v in verdicts))


def decide_for_record(record: ProgramRecord, site_default: str | None) -> LicenceDecision:
    """:func:`decide` for a record: its passes (Image first), licence field and LICENSE text."""
    passes = sorted(record.passes, key=lambda p: p.type != "image")
    return decide(
        [p.code for p in passes],
        dump_field=record.licence_field,
        repo_licence_text=record.repo_licence_text,
        site_default=site_default,
    )


# --- SPDX expressions -------------------------------------------------------------------------

_NOTHING_STATED = {"", "noassertion", "none", "unknown", "n/a", "na", "null", "nil", "other", "-", "?"}
_ID_CHARS = re.compile(r"[A-Za-z0-9.+:-]+")


@lru_cache(maxsize=1)
def _spdx_licensing():
    # Building the licensing object reads the whole SPDX list: do it once, and only when needed.
    from license_expression import get_spdx_licensing

    return get_spdx_licensing()


def _canonical_id(token: str) -> str | None:
    known = _lookup_id(token)
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


def _normalise_expression(text: str) -> str | None:
    """Canonical form of a well-formed SPDX expression (any case), or None if it is not one."""
    out: list[str] = []
    expect_operand, depth, after_with = True, 0, False
    for token in _EXPR_TOKEN.findall(text):
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
    known = _lookup_id(text.rstrip("."))
    if known is not None:
        return known
    rendered = _normalise_expression(text)
    if rendered is not None:
        return rendered
    hit = _best(_scan(text))
    return hit.spdx if hit is not None else NOASSERTION


# --- ScanCode ---------------------------------------------------------------------------------


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
        text = _comment_text(code or "")
        if not text.strip():
            continue
        for match in index.match(query_string=text):
            spdx = normalise_spdx(build_spdx_license_expression(match.rule.license_expression))
            if spdx == NOASSERTION:
                continue
            matched = " ".join(str(match.matched_text()).split())[:_MATCHED_TEXT_MAX]
            verdict = _verdict(spdx, "code-comment", matched, float(match.score()) / 100.0)
            if spdx not in verdicts or verdict.score > verdicts[spdx].score:
                verdicts[spdx] = verdict
    return list(verdicts.values())
