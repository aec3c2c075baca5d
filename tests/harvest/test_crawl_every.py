"""The crawl's periodic tasks (lease renewal, progress) outlive a failing call."""

from __future__ import annotations

import asyncio

from corpus.errors import CatalogueError
from harvest.crawl_http import _every


def test_a_failing_call_skips_one_turn_not_every_later_one():
    calls = []

    def renew() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise CatalogueError("database is locked")

    async def run() -> None:
        task = asyncio.create_task(_every(0.01, renew))
        while len(calls) < 3:
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(asyncio.wait_for(run(), timeout=10))
    assert calls[:3] == [0, 1, 2]
