"""Small helpers every format parser shares: dates, text fields, record checks.

Parsers are lenient about metadata (a garbage date becomes ``None``) and strict about what a
program needs to exist (an id, some code): the latter raise :class:`InputFormatError`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from corpus.errors import InputFormatError
from corpus.records import PassRecord, ProgramRecord

#: The largest code field (UTF-8 bytes) a record may carry; bigger ones are reported, not stored.
MAX_CODE_BYTES = 4 * 1024 * 1024

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


def record_problem(record: ProgramRecord) -> str | None:
    """Why a parsed record must not be stored (empty or oversized code), or ``None`` when fine.

    Importers and crawlers call this on every record they produce.
    """
    image = record.image_pass()
    if image is None or not image.code.strip():
        return "empty code"
    for p in record.passes:
        # A character takes 1 to 4 bytes: only encode when the length alone cannot decide.
        size = len(p.code) if len(p.code) * 4 <= MAX_CODE_BYTES else len(p.code.encode("utf-8", "replace"))
        if size > MAX_CODE_BYTES:
            return f"code field too large ({size} bytes in {p.name}, limit {MAX_CODE_BYTES // 2**20} MiB)"
    return None
