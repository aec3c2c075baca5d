"""Times as every command prints them: ISO 8601 in UTC with a ``Z`` (``2024-05-01T12:00:00Z``).

The catalogue stores UTC; SQLite gives its times back without a zone, so a time read from it
is UTC whether it says so or not.
"""

from __future__ import annotations

from datetime import UTC, datetime


def iso_utc(value: datetime | None) -> str | None:
    """``value`` as ISO 8601 in UTC ending in ``Z``; a time without a zone is taken as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
