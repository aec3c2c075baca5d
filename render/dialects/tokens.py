"""GLSL source as tokens with their offsets, for the edits that need to know the program's shape.

The WebGL adaptations (:mod:`render.dialects.webgl`) rewrite a program where a browser and a desktop
compiler disagree: which functions it declares, which local variables it declares without an
initialiser. They need to know statements and scopes, not just words, and they must edit the
original text in place (so that the driver's line numbers stay the user's). So this module gives
tokens with their offsets; comments and preprocessor lines are skipped (a directive is one token
of kind ``directive`` that the scans step over). One pass of one regular expression: linear in
the size of the code, whatever it holds (an unterminated comment ends at the end of the code).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

_TOKEN = re.compile(
    r"(?P<space>\s+)"
    r"|(?P<comment>//[^\n]*|/\*.*?(?:\*/|\Z))"
    r"|(?P<directive>\#(?:\\\r?\n|[^\n])*)"
    r"|(?P<id>[A-Za-z_]\w*)"
    r"|(?P<num>0[xX][0-9a-fA-F]+[uU]?|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?[uUfF]?)"
    r"|(?P<op>\+\+|--|<<=|>>=|<<|>>|&&|\|\||\^\^|[-+*/%<>=!&|^]=|.)",
    re.S,
)

#: Every type name GLSL ES and desktop GLSL 3.30 share that a local variable may have.
SCALAR_TYPES = ("float", "int", "uint", "bool")
VECTOR_TYPES = tuple(f"{p}vec{n}" for p in ("", "i", "u", "b") for n in (2, 3, 4))
MATRIX_TYPES = ("mat2", "mat3", "mat4") + tuple(f"mat{c}x{r}" for c in (2, 3, 4) for r in (2, 3, 4))
VALUE_TYPES = frozenset(SCALAR_TYPES + VECTOR_TYPES + MATRIX_TYPES)
#: Words that may precede a type in a declaration without changing what it declares.
PRECISIONS = frozenset(("highp", "mediump", "lowp", "precise", "invariant"))


class Token(NamedTuple):
    kind: str  # id, num, op, directive
    text: str
    start: int
    end: int


def tokenize(code: str) -> list[Token]:
    """The tokens of ``code`` (comments and white space left out)."""
    return list(iter_tokens(code))


def iter_tokens(code: str) -> Iterator[Token]:
    """:func:`tokenize` one token at a time, for scans that stop early."""
    kept = (m for m in _TOKEN.finditer(code) if m.lastgroup not in ("space", "comment"))
    return (Token(m.lastgroup, m.group(), *m.span()) for m in kept)


def code_tokens(code: str) -> list[Token]:
    """:func:`tokenize` without preprocessor directives: what the compiler's parser sees, as far
    as it can be known without running the preprocessor."""
    return [t for t in tokenize(code) if t.kind != "directive"]


_DEFINE = re.compile(r"#\s*define\s+(\w+)")


def defined_macros(tokens: list[Token]) -> set[str]:
    """The names the code ``#define``s (from :func:`tokenize`'s directive tokens)."""
    return {m.group(1) for t in tokens if t.kind == "directive" and (m := _DEFINE.match(t.text))}


def matching(tokens: list[Token], i: int) -> int:
    """The index of the bracket closing ``tokens[i]`` (``(``, ``[`` or ``{``), or -1."""
    opening = tokens[i].text
    closing = {"(": ")", "[": "]", "{": "}"}[opening]
    depth = 0
    for j in range(i, len(tokens)):
        text = tokens[j].text
        if text == opening:
            depth += 1
        elif text == closing:
            depth -= 1
            if depth == 0:
                return j
    return -1


def balanced(tokens: list[Token]) -> bool:
    """Whether braces and parentheses pair up. Code whose blocks open or close in preprocessor
    branches (``#ifdef A {`` … ``#else {``) does not, and is left as it is by the scans."""
    depth = {"{": 0, "(": 0, "[": 0}
    closing = {"}": "{", ")": "(", "]": "["}
    for t in tokens:
        if t.text in depth:
            depth[t.text] += 1
        elif t.text in closing:
            depth[closing[t.text]] -= 1
            if depth[closing[t.text]] < 0:
                return False
    return not any(depth.values())


def statement_end(tokens: list[Token], k: int) -> int:
    """The index of the last token of the statement that starts at ``tokens[k]`` (a block, an
    ``if``/``for``/``while``/``do``/``switch`` with what it governs, or an expression or
    declaration up to its ``;``), or -1 where the code does not say for sure."""
    try:
        return _end_of(tokens, k)
    except (_Unreadable, RecursionError):
        return -1


class _Unreadable(Exception):
    pass


def _end_of(tokens: list[Token], k: int) -> int:
    if k >= len(tokens):
        raise _Unreadable
    text = tokens[k].text
    if text == "{":
        return _closing(tokens, k)
    if text in ("if", "for", "while", "switch"):
        if k + 1 >= len(tokens) or tokens[k + 1].text != "(":
            raise _Unreadable
        close = _closing(tokens, k + 1)
        if text == "switch":
            return _closing(tokens, close + 1) if close + 1 < len(tokens) else _unreadable()
        end = _end_of(tokens, close + 1)
        if text == "if" and end + 1 < len(tokens) and tokens[end + 1].text == "else":
            end = _end_of(tokens, end + 2)
        return end
    if text == "do":
        end = _end_of(tokens, k + 1)
        if end + 2 >= len(tokens) or tokens[end + 1].text != "while" or tokens[end + 2].text != "(":
            raise _Unreadable
        close = _closing(tokens, end + 2)
        if close + 1 >= len(tokens) or tokens[close + 1].text != ";":
            raise _Unreadable
        return close + 1
    j = k
    while j < len(tokens) and tokens[j].text != ";":
        if tokens[j].text in ("(", "[", "{"):
            j = _closing(tokens, j)
        elif tokens[j].text in (")", "]", "}"):
            raise _Unreadable
        j += 1
    if j >= len(tokens):
        raise _Unreadable
    return j


def _closing(tokens: list[Token], k: int) -> int:
    if tokens[k].text not in ("(", "[", "{"):
        raise _Unreadable
    close = matching(tokens, k)
    if close < 0:
        raise _Unreadable
    return close


def _unreadable() -> int:
    raise _Unreadable
