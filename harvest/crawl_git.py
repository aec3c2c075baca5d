"""``harvest crawl git``: a repository synced into a cache folder, its shader files stored."""

from __future__ import annotations

import time
from itertools import chain
from pathlib import Path

from corpus.store import ProgramStore
from harvest.crawl_report import CrawlReport, finish
from harvest.importers import BadRecord
from harvest.sources import git


def crawl_repository(catalogue, source_name: str, url: str, limit: int | None, options: dict) -> CrawlReport:
    """Sync a git repository into the cache folder and store its shader files; files the
    reader skips (too large, a symlink out of the checkout, not UTF-8) are listed in the report."""
    report = CrawlReport(source_name)
    started = time.perf_counter()
    cache = options.get("cache_dir") or git.default_cache_dir(catalogue.engine.url.database)
    checkout = git.sync(url, Path(cache), timeout=options.get("git_timeout") or git.GIT_TIMEOUT)
    report.requests_done = 1
    store = ProgramStore(catalogue, via=f"crawl:{source_name}")
    batch: list = []
    size = min(500, limit or 500)
    for item in chain(git.read_checkout(checkout), [None]):  # None: the end, store what is left
        if isinstance(item, BadRecord):
            report.parse_errors += 1
            report.skipped.append(f"{item.location}: {item.reason}")
            continue
        if item is not None:
            batch.append(item)
        if batch and (item is None or len(batch) >= size):
            with catalogue.session() as s:
                result = store.store(batch, s.connection())
            report.count(result)
            batch = []
            if limit and report.added + report.updated >= limit:
                break
    return finish(catalogue, report, started)
