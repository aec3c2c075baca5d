"""What every crawl source provides."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from corpus.errors import InputFormatError
from corpus.records import ProgramRecord
from harvest.frontier import NewRequest


class ErrorAnswer(InputFormatError):
    """A well-formed answer in which the site says no (the API's ``{"Error": "Shader not found"}``).

    Any other :class:`InputFormatError` from :meth:`CrawlSource.parse` (JSON cut short, an HTML
    error page served with 200, a layout the parser does not know) is fetched again with backoff
    until the attempts run out, since a flaky server may answer properly next time; this one is
    recorded as a parse error at once, since asking again gets the same answer.
    """


@dataclass
class Parsed:
    """What one response yielded: programs to store and further requests to queue.

    ``paging`` holds the request for a listing's next page. The crawl queues it only when this
    response brought something new (a program added or changed, or a request never queued
    before), because a site's result counts lie and some sites repeat their last page forever.
    """

    records: list[ProgramRecord] = field(default_factory=list)
    requests: list[NewRequest] = field(default_factory=list)
    paging: list[NewRequest] = field(default_factory=list)


#: The orders a Shadertoy listing takes (its API and its site alike).
SHADERTOY_SORTS = ("newest", "popular", "love", "hot")


class CrawlSource(Protocol):
    name: str  # how it fetches: "glslsandbox", "shadertoy-api", …
    site: str  # the catalogue's source: "glslsandbox", "shadertoy", …
    default_base_url: str | None  # None: every crawl must name its address (git)
    needs_key: bool  # the crawl adds ``key=…`` to every URL at fetch time; it is never stored
    #: the crawl options it reads (``query``, ``sort``, ``user``, ``since``, ``cache_dir``), each
    #: with the values it takes (``None``: any); an option it does not read is a usage error
    options: dict[str, tuple[str, ...] | None]

    def start(self, base_url: str, options: dict | None = None) -> list[NewRequest]: ...

    def parse(self, kind: str | None, url: str, body: bytes, base_url: str) -> Parsed: ...
