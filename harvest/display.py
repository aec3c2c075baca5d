"""A live view of a crawl on a terminal: requests made, programs added and updated, errors, and
each host's current request rate (over the last few seconds, so a Retry-After pause or the
adaptive throttle shows). Nothing at all when stderr is not a terminal: piped output stays one
summary line (or ``--json``)."""

from __future__ import annotations

import contextlib
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator

from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from corpus.cliutils import stderr
from harvest.crawl_report import CrawlProgress

RATE_WINDOW_S = 10.0


class HostRates:
    """Requests per second per host over a sliding window of samples of the fetcher's counters."""

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, dict[str, int]]] = deque()

    def add(self, counts: dict[str, int], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._samples.append((now, dict(counts)))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window_s:
            self._samples.popleft()

    def rates(self) -> dict[str, float]:
        if len(self._samples) < 2:
            return {}
        (t0, first), (t1, last) = self._samples[0], self._samples[-1]
        span = t1 - t0
        return {host: (n - first.get(host, 0)) / span if span > 0 else 0.0 for host, n in last.items()}


def render(source: str, progress: CrawlProgress, rates: dict[str, float], elapsed_s: float) -> Group:
    """The display's content: one line of totals, then one line per host."""
    report = progress.report
    errors = report.failed + report.parse_errors
    head = Text.assemble(
        (f"crawling {source}", "bold"),
        f"  {progress.requests:,} requests",
        f"  {report.added:,} programs added",
        f"  {report.updated:,} updated",
        (f"  {errors:,} errors", "red" if errors else ""),
        f"  {int(elapsed_s) // 60:02d}:{int(elapsed_s) % 60:02d}",
    )
    hosts = Table.grid(padding=(0, 2))
    for host, count in sorted(progress.requests_by_host.items()):
        hosts.add_row(f"  {host}", f"{count:,} requests", f"{rates.get(host, 0.0):.1f}/s")
    return Group(head, hosts)


class CrawlDisplay:
    """A rich Live view on stderr, refreshed as progress arrives and four times a second."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.rates = HostRates()
        self.started = time.monotonic()
        self.last: CrawlProgress | None = None
        self._live = Live(Text(f"crawling {source} …"), console=stderr, refresh_per_second=4, transient=True)

    def update(self, progress: CrawlProgress) -> None:
        self.last = progress
        self.rates.add(progress.requests_by_host)
        elapsed = time.monotonic() - self.started
        self._live.update(render(self.source, progress, self.rates.rates(), elapsed))

    def __enter__(self) -> CrawlDisplay:
        self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._live.__exit__(*exc)


@contextlib.contextmanager
def live_progress(source: str) -> Iterator[Callable[[CrawlProgress], None] | None]:
    """A progress callback for :func:`harvest.crawling.crawl` on a terminal, else None."""
    if not sys.stderr.isatty():
        yield None
        return
    with CrawlDisplay(source) as display:
        yield display.update
