"""``harvest crawl git``: a repository synced into a cache folder; its shader files stored, and
the dumps it holds (JSON lines of Shadertoy records under ``data/``, compressed or not)
imported as ``harvest import`` would.

Each dump is its own import (:func:`harvest.importing.import_path`, keyed by its path, size and
modification time in the checkout), so a re-crawl reads the dumps the repository added or
changed since and skips the others; an import cut short resumes on the next crawl.
"""

from __future__ import annotations

import time
from itertools import chain
from pathlib import Path

from corpus.db import Catalogue
from corpus.errors import InputFormatError
from corpus.store import ProgramStore
from harvest.crawl_report import CrawlReport, finish
from harvest.importers import BadRecord, detect_format, dump_files_in
from harvest.importing import import_path
from harvest.sources import git


def crawl_repository(
    catalogue: Catalogue, source_name: str, url: str, limit: int | None, options: dict
) -> CrawlReport:
    """Sync a git repository into the cache folder and store its shader files, then import its
    dumps; files the reader skips (too large, a symlink out of the checkout, not UTF-8) and bad
    dump records are listed in the report. ``limit`` stops before the next batch or dump."""
    report = CrawlReport(source_name)
    started = time.perf_counter()
    cache = options.get("cache_dir") or git.default_cache_dir(catalogue.engine.url.database)
    checkout = git.sync(url, Path(cache), timeout=options.get("git_timeout") or git.GIT_TIMEOUT)
    report.requests_done = 1
    _store_shader_files(catalogue, checkout, report, limit)
    _import_dumps(catalogue, checkout, report, limit)
    return finish(catalogue, report, started)


def _reached(report: CrawlReport, limit: int | None) -> bool:
    return bool(limit and report.added + report.updated >= limit)


def _store_shader_files(catalogue: Catalogue, checkout: git.Checkout, report: CrawlReport, limit) -> None:
    store = ProgramStore(catalogue, via=f"crawl:{report.source}")
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
                report.count(store.store(batch, s.connection()))
            batch = []
            if _reached(report, limit):
                break


def _import_dumps(catalogue: Catalogue, checkout: git.Checkout, report: CrawlReport, limit) -> None:
    for dump in dump_files_in(checkout.path):
        if _reached(report, limit):
            return
        rel = dump.relative_to(checkout.path).as_posix()
        label = f"{checkout.url}@{checkout.commit}!{rel}"
        try:
            fmt = detect_format(dump)
        except InputFormatError:
            report.skipped.append(f"{label}: not a dump in a format harvest reads; skipped")
            continue
        done = import_path(catalogue, dump, fmt, label=label, via=f"crawl:{report.source}", finish=False)
        report.added += done.added
        report.updated += done.updated
        report.unchanged += done.unchanged
        report.excluded += done.excluded
        report.parse_errors += done.bad_count
        report.skipped += [f"{bad.location}: {bad.reason}" for bad in done.bad]
