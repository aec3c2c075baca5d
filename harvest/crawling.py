"""``harvest crawl``: one source, by name, into the catalogue.

Web sources go through the frontier, the fetcher and the store (:mod:`harvest.crawl_http`); a
git repository is synced and read like a checkout (:mod:`harvest.crawl_git`). Either way a crawl
killed at any moment resumes with ``harvest crawl`` again and fetches nothing committed twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from corpus.db import Catalogue
from corpus.errors import UsageProblem
from harvest.crawl_git import crawl_repository
from harvest.crawl_http import HttpCrawl
from harvest.crawl_report import CrawlProgress, CrawlReport
from harvest.fetcher import FetchPolicy
from harvest.sources import check_options, git, source_and_base

__all__ = ["CrawlProgress", "CrawlReport", "crawl"]


def crawl(
    catalogue: Catalogue,
    source_name: str,
    *,
    base_url: str | None = None,
    policy: FetchPolicy | None = None,
    limit: int | None = None,
    log: list | None = None,
    key: str | None = None,
    options: dict | None = None,
    progress: Callable[[CrawlProgress], None] | None = None,
) -> CrawlReport:
    """Crawl ``source_name`` until its frontier is empty, ``limit`` programs are stored, or the
    site blocks us (then the report says why and the source's requests are parked as blocked)."""
    source, base = source_and_base(source_name, base_url)
    check_options(source, options or {})
    if isinstance(source, git.GitRepositories):
        return crawl_repository(catalogue, source_name, base, limit, options or {})
    if source.needs_key and not key:
        raise UsageProblem(
            f"{source_name} needs an API key",
            hint="pass --key KEY or set SHADERTOY_API_KEY (or import a dump instead: harvest import)",
        )
    policy = policy or FetchPolicy()
    run = HttpCrawl(
        catalogue,
        source_name,
        source,
        base,
        policy,
        key=key,
        options=options or {},
        log=log,
        progress=progress,
    )
    return asyncio.run(run.run(limit))
