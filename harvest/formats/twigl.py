"""twigl programs (Shaders21k's ``twigl/fragments/NAME.fragment`` with its ``twigl/modes`` file).

twigl has four families (classic, geek, geeker, geekest), each plain, GLSL ES ``300 es`` or MRT;
MRT mode is itself ES 3.00, so a mode asking for both is MRT.
"""

from __future__ import annotations

import re

from corpus.errors import InputFormatError
from corpus.records import TWIGL_MODES, ProgramRecord
from harvest.formats.common import image_pass, required_code

_FAMILIES = ("classic", "geek", "geeker", "geekest")
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}
_HINT = (
    "expected a mode file (family, ES 3.00 flag, MRT flag) or a phrase like 'geekest (300 es)' or 'geek mrt'"
)


def parse_twigl_mode(text: str) -> str:
    """Turn a mode file or phrase into a dialect of :data:`corpus.records.TWIGL_MODES`.

    A mode file has the family on its first line, then ``True``/``False`` for GLSL ES 3.00,
    then ``True``/``False`` for MRT (a fourth flag, if present, does not change the dialect).
    A phrase names the family and optionally ``300 es`` / ``300es`` and ``mrt``.
    """
    lines = [line.strip().lower() for line in (text or "").splitlines() if line.strip()]
    if len(lines) >= 2 and lines[0] in _FAMILIES:
        flags = [_flag(line, text) for line in lines[1:3]]
        es300, mrt = flags[0], len(flags) > 1 and flags[1]
        return _dialect(lines[0], es300=es300, mrt=mrt)
    tokens = re.findall(r"[a-z0-9]+", " ".join(lines))
    families = [t for t in tokens if t in _FAMILIES]
    if len(families) != 1:
        raise InputFormatError(f"unknown twigl mode {text!r}", hint=_HINT)
    joined = " ".join(tokens)
    es300 = bool(re.search(r"\b(300 ?es|es ?300|webgl ?2)\b", joined))
    return _dialect(families[0], es300=es300, mrt="mrt" in tokens)


def _flag(line: str, text: str) -> bool:
    if line in _TRUE:
        return True
    if line in _FALSE:
        return False
    raise InputFormatError(f"unknown twigl mode {text!r}: {line!r} is not True or False", hint=_HINT)


def _dialect(family: str, *, es300: bool, mrt: bool) -> str:
    dialect = f"twigl-{family}{'-mrt' if mrt else '-300es' if es300 else ''}"
    assert dialect in TWIGL_MODES
    return dialect


def twigl_record(name: str, code: str, mode_text: str, *, origin: str | None) -> ProgramRecord:
    """A twigl program named ``name`` (its external id) with its code and mode text."""
    if not name or not name.strip():
        raise InputFormatError("twigl fragment has no name")
    return ProgramRecord(
        source="twigl",
        external_id=name,
        dialect=parse_twigl_mode(mode_text),
        passes=image_pass(required_code(code, f"twigl fragment {name}")),
        title=name,
        url=None,
        origin=origin,
    )
