"""The rules that find licence statements in text: one pattern and one handler each.

A handler gets the match and the whole text and returns ``(spdx, score[, vague])`` or None.
The SPDX-line rule returns the expression as stated; :func:`corpus.licences.scan.scan`
normalises it (normalising may itself scan a free-form name, so that lives with the scanner).

Patterns must stay linear on any text: never two quantifiers over the same characters with only
optional items between them (``\\s*,?\\s*`` tries every split of a run of blanks, which made
200 KB of spaces after "Apache License" cost minutes), and a handler looks at a bounded window.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from corpus.licences.classes import database_ids
from corpus.licences.ids import CC_VERSIONS, GPL_FIRST, GPL_VERSIONS, MPL_VERSIONS, VAGUE_REFS, lookup_id
from corpus.licences.verdicts import ALL_RIGHTS_RESERVED, NONCOMMERCIAL, PUBLIC_DOMAIN

# A handler gets the match and the whole text; returns (spdx, score[, vague]) or None.
_Handler = Callable[[re.Match[str], str], "tuple[str, float] | tuple[str, float, bool] | None"]


@dataclass(frozen=True)
class Rule:
    keys: tuple[str, ...]  # the rule runs only when one of these occurs in the lower-cased text
    pattern: re.Pattern[str]
    handler: _Handler
    evidence: str = "code-comment"


def _fixed(spdx: str, score: float, vague: bool = False) -> _Handler:
    return lambda match, text: (spdx, score, vague)


RULES: list[Rule] = []


def _rule(keys: tuple[str, ...], pattern: str, flags: int = re.IGNORECASE, evidence: str = "code-comment"):
    def register(handler: _Handler) -> _Handler:
        RULES.append(Rule(keys, re.compile(pattern, flags), handler, evidence))
        return handler

    return register


def _add(keys: tuple[str, ...], pattern: str, spdx: str, score: float, flags: int = re.IGNORECASE) -> None:
    RULES.append(Rule(keys, re.compile(pattern, flags), _fixed(spdx, score)))


@_rule(("spdx-license-identifier",), r"SPDX-License-Identifier[ \t]*:[ \t]*([^\n]*)", evidence="spdx-line")
def _spdx_line(match: re.Match[str], text: str):
    # the stated expression as written: the scanner normalises it (corpus.licences.scan)
    return match.group(1).strip().rstrip("*/ \t"), 1.0


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


# "MIT" on a line of its own (or "The MIT."), the shortest header there is.
_add(("mit",), r"^[^\S\n]*(?:(?i:the)[^\S\n]+)?MIT\.?[^\S\n]*$", "MIT", 0.7, flags=re.MULTILINE)


# "License: X", "licensed under the X", "license X" where X is an id we know: one of our own
# spellings, or after "License:" any id of license-expression's licence database (Artistic-2.0,
# MS-PL, UPL-1.0 …); elsewhere a database id only as SPDX spells it, since some are words
# ("Fair", "Glide") that prose puts after "license".
@_rule(
    ("licen",),
    r"\blicen[cs](?:e[ds]?|ing)?\b[ \t]*(?:(?:([:=])|-(?=\s)"
    r"|\bunder\b(?:\s+the)?(?:\s+terms\s+of(?:\s+the)?)?|\bas\b|\bis\b)[ \t]*)?"
    r"\(?([A-Za-z0-9][A-Za-z0-9.+-]*)",
)
def _licence_named(match: re.Match[str], text: str):
    token = match.group(2).rstrip(".-")
    spdx = lookup_id(token)
    if spdx is None:
        spdx = database_ids().get(token.upper())
        if spdx is None or (match.group(1) is None and token != spdx):
            return None
    return (spdx, 0.7, True) if spdx in VAGUE_REFS else (spdx, 0.9)


@_rule(
    ("opensource.org",),
    r"opensource\.org/licenses/([A-Za-z0-9.+-]+?)(?:-license)?(?:\.php|\.html)?(?![\w.+-])",
)
def _osi_url(match: re.Match[str], text: str):
    spdx = lookup_id(match.group(1))
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


RULES.append(
    Rule(
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


@_rule(("apache",), r"\bapache\s+licen[cs]e(?:[\s,]*(?:version\s*|v\.?\s*)?(\d(?:\.\d)?)(?![\d.]\d))?")
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
    if version in CC_VERSIONS:
        return f"{ident}-{version}", False
    return f"LicenseRef-{ident}", True


@_rule(
    ("attribution",),
    r"(?=[ca])(?:(?P<cc>\bcreative\s+commons|\bcc\b)[\s:,-]*(?:licen[cs]e[\s:,-]*)?(?:\(\s*)?)?\battribution"
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
    r"(?:\bcc|\bcreative\s+commons)[\s_-]*(?:\(\s*)?by\b(?P<el>(?:[\s_-]+(?:nc|sa|nd)\b)*)"
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
    if version in GPL_VERSIONS[family]:
        return f"{family}-{version}-{'or-later' if later else 'only'}", score
    return f"{family}-{GPL_FIRST[family]}-or-later", 0.7, True


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
@_rule(("mozilla",), r"mozilla\s+public\s+licen[cs]e(?:[\s,]*(?:version\s*|v\.?\s*)?(\d\.\d))?")
def _mpl_name(match: re.Match[str], text: str):
    version = match.group(1)
    if version in MPL_VERSIONS:
        return f"MPL-{version}", 0.95
    return "MPL-2.0", 0.7, True


@_rule(
    ("mozilla.org", "mpl-", "mpl 1", "mpl 2", "mpl v", "mplv"),
    r"mozilla\.org/MPL/(\d\.\d)|\bMPL[\s-]*v?(\d\.\d)\b",
)
def _mpl_short(match: re.Match[str], text: str):
    version = match.group(1) or match.group(2)
    return (f"MPL-{version}", 0.9) if version in MPL_VERSIONS else None


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


ARR_PLAIN, _ARR_PROHIBITION = 0.7, 0.75
PROHIBITION_WORDS = tuple(
    f"{neg} {verb}"
    for neg in ("not", "n't")
    for verb in ("host", "display", "distribut", "redistribut", "share", "publish", "repost")
)
_add(("reserved",), r"\ball\s+rights\s+reserved\b", ALL_RIGHTS_RESERVED, ARR_PLAIN)


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


@_rule(PROHIBITION_WORDS, r"(?:not|n't)\s+(?:host|display|distribute|redistribute|share|publish|repost)\b")
def _prohibition(match: re.Match[str], text: str):
    before = text[max(0, match.start() - 8) : match.start()]
    modal = re.search(r"(?:\b(?:may|must|can|shall|should|do)\s*|\bca|\bdo)$", before, re.I)
    return (ALL_RIGHTS_RESERVED, _ARR_PROHIBITION) if modal else None


_add(
    ("commercial",),
    # every alternative starts with one of these letters: the guard lets the engine skip the rest
    r"(?=[nmcsd])"
    r"(?:(?<!commercial and )(?<!commercial or )(?<!commercial & )(?<!commercial/)(?<!commercial / )"
    r"\bnon[\s-]?commercial\s+(?:use|uses|usage|purposes?|projects?|applications?|only)\b"
    r"|\bnot\s+(?:be\s+)?(?:for|used\s+for|to\s+be\s+used\s+for|allowed\s+for|permitted\s+for)\s+(?:any\s+)?commercial"
    r"|\b(?:may|must|can|shall|should)\s*(?:not|n't)\s+(?:be\s+)?(?:use|used|sell|sold|include|included"
    r"|distribute|distributed)\b[^.;]{0,60}?(?<!non)(?<!non-)(?<!non )\bcommercial"
    r"(?!\s+(?:or|and|&|/)\s+non[\s-]?commercial)"
    r"|\b(?:cannot|can't|don't|do\s+not)\s+(?:use|sell|include|distribute)\b"
    r"[^.;]{0,60}?(?<!non)(?<!non-)(?<!non )\bcommercial"
    r"(?!\s+(?:or|and|&|/)\s+non[\s-]?commercial)"
    r"|\bno\s+commercial\s+(?:use|usage|purposes?)\b"
    r"|\bcommercial\s+(?:use|usage|purposes?)\s+(?:is\s+|are\s+)?(?:not\s+(?:allowed|permitted)|prohibited|forbidden))",
    NONCOMMERCIAL,
    0.7,
)
