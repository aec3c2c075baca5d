"""The comments of a program, and whether they may state a licence at all (a cheap word check)."""

from __future__ import annotations

import re

from corpus.glsl import comment_texts
from corpus.licences.rules import PROHIBITION_WORDS

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
    *PROHIBITION_WORDS,
)
_MIT_WORD = re.compile(r"MIT(?<!\wMIT)(?!\w)")
_BLOCK_LINE_PREFIX = re.compile(r"^[ \t]*\*+(?!/)[ \t]?", re.MULTILINE)


def may_state_licence(comments: str) -> bool:
    lowered = comments.lower()
    for word in _PREFILTER_WORDS:
        if word in lowered:
            return True
    return "MIT" in comments and _MIT_WORD.search(comments) is not None


def clean_comments(comments: list[str]) -> str:
    parts = []
    for comment in comments:
        if comment[1] == "/":
            parts.append(comment.lstrip("/"))
        else:
            body = comment[2:-2] if len(comment) >= 4 and comment.endswith("*/") else comment[2:]
            parts.append(_BLOCK_LINE_PREFIX.sub("", body))
    return "\n".join(parts)


def comment_text(code: str) -> str:
    """The text of every comment in ``code``, markers stripped, one comment after another."""
    return clean_comments(comment_texts(code))
