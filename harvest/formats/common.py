"""Small helpers every format parser shares: dates, text fields, record checks.

Parsers are lenient about metadata (a garbage date becomes ``None``) and strict about what a
program needs to exist (an id, some code): the latter raise :class:`InputFormatError`.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from corpus.errors import InputFormatError
from corpus.records import PassRecord, ProgramRecord

#: The largest code field (UTF-8 bytes) a record may carry; bigger ones are reported, not stored.
MAX_CODE_BYTES = 4 * 1024 * 1024

_SURROGATE = re.compile("[\ud800-\udfff]")
# Epoch numbers above this are milliseconds (1e11 seconds is the year 5138).
_MS_THRESHOLD = 1e11


def parse_datetime(value: Any) -> datetime | None:
    """Read a timestamp the way sources write them; ``None`` for missing or garbage values.

    Accepts unix seconds or milliseconds (number or numeric string), ISO 8601, RFC 2822
    ("Thu, 01 Jun 2017 09:57:33 +0200") and MongoDB's ``{"$date": ...}``. Naive times are UTC.
    """
    if isinstance(value, dict):
        inner = value.get("$date", value.get("$numberLong"))
        return parse_datetime(inner) if inner is not None else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return _from_epoch(float(value))
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return _from_epoch(float(text))
    for parse in (_parse_iso, parsedate_to_datetime):
        try:
            parsed = parse(text)
        except (TypeError, ValueError, IndexError):
            continue
        if parsed is not None:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))


def _from_epoch(number: float) -> datetime | None:
    if number <= 0:
        return None
    if number > _MS_THRESHOLD:
        number /= 1000.0
    try:
        return datetime.fromtimestamp(number, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def text_or_none(value: Any) -> str | None:
    """A metadata string, stripped; ``None`` for missing, empty or non-text values."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def tag_list(value: Any) -> list[str]:
    """Tags as a list of non-empty strings; a comma-separated string is split."""
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple):
        return []
    return [t for t in (text_or_none(v) for v in value) if t]


def required_id(value: Any, what: str) -> str:
    """An external id (string or number); raises when it is missing or blank."""
    text = text_or_none(value)
    if text is None:
        raise InputFormatError(f"{what} has no id")
    return text


def required_code(value: Any, what: str) -> str:
    """The exact code string; raises when it is missing, not text or only whitespace."""
    if not isinstance(value, str) or not value.strip():
        raise InputFormatError(f"{what} has no code")
    return value


def image_pass(code: str) -> list[PassRecord]:
    """The one pass of a single-pass program."""
    return [PassRecord(name="Image", type="image", code=code)]


def clean_text(value: str) -> str:
    """Text a catalogue can hold: a lone UTF-16 surrogate (JSON's ``"\\ud800"``, which no UTF-8
    encoder accepts) becomes U+FFFD and NUL characters (which PostgreSQL refuses) are dropped."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = _SURROGATE.sub("\ufffd", value)
    return value


def _clean_json(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): _clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean_json(v) for v in value]
    return value


def clean_metadata(record: ProgramRecord) -> ProgramRecord:
    """``record`` with its descriptive text made storable (see :func:`clean_text`), in place.

    A dump's odd characters in a title, a tag or an input's sampler must not end an import (they
    did, as an encoding error deep in the database driver). Code is never changed here: that it
    is stored byte for byte is what its hash promises (:func:`record_problem` refuses it instead).
    """
    for name in ("title", "author", "description", "licence_field", "url", "parent"):
        value = getattr(record, name)
        if isinstance(value, str):
            setattr(record, name, clean_text(value))
    record.tags = [clean_text(tag) for tag in record.tags]
    record.extra = _clean_json(record.extra)
    for p in record.passes:
        p.inputs = [
            replace(
                i, ref=clean_text(i.ref) if isinstance(i.ref, str) else i.ref, sampler=_clean_json(i.sampler)
            )
            for i in p.inputs
        ]
    return record


def record_problem(record: ProgramRecord) -> str | None:
    """Why a parsed record must not be stored (empty, oversized or untextual code), or ``None``.

    Importers and crawlers call this on every record they produce.
    """
    image = record.image_pass()
    if image is None or not image.code.strip():
        return "empty code"
    for p in record.passes:
        try:
            size = len(p.code.encode("utf-8"))
        except UnicodeEncodeError as exc:
            return f"code of {p.name} is not text (a lone UTF-16 surrogate at character {exc.start})"
        if size > MAX_CODE_BYTES:
            return f"code field too large ({size} bytes in {p.name}, limit {MAX_CODE_BYTES // 2**20} MiB)"
        if "\x00" in p.code:
            return f"code of {p.name} holds a NUL character (at character {p.code.index(chr(0))})"
    return None
