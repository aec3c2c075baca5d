"""Per-host politeness that holds across crawl processes: a ``host_slot`` row per host in the
catalogue says when the next request to it may start (Scrapy's downloader slot, kept in the
database instead of one process's memory).

A crawl reserves the next start time for each request in one short write transaction: read the
host's row (``FOR UPDATE`` on PostgreSQL, under ``BEGIN IMMEDIATE`` on SQLite), take
``max(now, next_allowed_at)`` as its own start, and move the row on by the delay. Two processes
can never get the same time, whichever machine they run on (their clocks kept in step by NTP).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from corpus.bulk import insert_rows
from corpus.db import Catalogue, write_transaction
from corpus.models import HostSlot


class HostSlots:
    """The shared slots of one catalogue; :meth:`reserve` is what the fetcher calls."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue

    def reserve(self, host: str, gap_s: float) -> float:
        """Reserve the next start for a request to ``host`` and hold the following ``gap_s``
        seconds for it; returns that start as epoch seconds (now, or later if others hold it)."""
        with write_transaction(self.catalogue) as s:
            conn = s.connection()
            insert_rows(
                conn,
                HostSlot.__table__,
                [{"host": host, "next_allowed_at": datetime.now(UTC)}],
                ignore_conflicts_on=["host"],
            )
            allowed = conn.execute(
                select(HostSlot.next_allowed_at).where(HostSlot.host == host).with_for_update()
            ).scalar_one()
            allowed = allowed if allowed.tzinfo else allowed.replace(tzinfo=UTC)  # SQLite: naive UTC
            # read the clock under the row's lock: a time read before a wait for the lock would be
            # stale, and a start in the past would let the next request follow closer than the gap
            start = max(datetime.now(UTC), allowed)
            conn.execute(
                update(HostSlot)
                .where(HostSlot.host == host)
                .values(next_allowed_at=start + timedelta(seconds=gap_s))
            )
        return start.timestamp()
