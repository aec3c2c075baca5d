"""What a crawl reports, as it goes (:class:`CrawlProgress`) and at its end (:class:`CrawlReport`)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from corpus.db import Catalogue, refresh_statistics
from corpus.store import BatchResult, mark_exact_duplicates


@dataclass
class CrawlReport:
    source: str
    requests_done: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    excluded: int = 0
    failed: int = 0
    parse_errors: int = 0
    blocked: str | None = None
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)  # "where: why" of what a source left out
    last_failure: str | None = None  # the error of the last request that failed for good
    budget_spent: str | None = None  # why the crawl stopped early: its --budget ran out

    @property
    def all_failed(self) -> bool:
        """Requests were made and not one of them succeeded (the site is down, or not the one
        meant): a crawl that must not look like a success."""
        return self.requests_done == 0 and self.failed + self.parse_errors > 0

    def count(self, result: BatchResult) -> None:
        """Add what one stored batch came to."""
        self.added += result.added
        self.updated += result.updated
        self.unchanged += result.unchanged
        self.excluded += result.excluded

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class CrawlProgress:
    """What a live display shows after each batch: the report so far and requests per host."""

    report: CrawlReport
    requests: int  # HTTP requests made, retries and robots.txt included
    requests_by_host: dict[str, int]


def finish(catalogue: Catalogue, report: CrawlReport, started: float) -> CrawlReport:
    """Mark exact duplicates among what the crawl stored, refresh statistics, time the report."""
    with catalogue.session() as s:
        mark_exact_duplicates(s.connection())
    refresh_statistics(catalogue)
    report.seconds = time.perf_counter() - started
    return report
