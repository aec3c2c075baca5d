"""Crawl sources: small, declarative modules that say which requests to make and how to parse
the answers. No retry, delay, robots or caching logic here: that is the fetcher's job."""

from corpus.errors import ImageProgramsError
from harvest.sources.base import CrawlSource, ErrorAnswer, Parsed
from harvest.sources.git import GitRepositories
from harvest.sources.glslsandbox import GlslSandbox
from harvest.sources.shadertoy_api import ShadertoyApi
from harvest.sources.shadertoy_site import ShadertoySite

CRAWL_SOURCES: dict[str, CrawlSource] = {
    s.name: s for s in (GlslSandbox(), ShadertoyApi(), ShadertoySite(), GitRepositories())
}

__all__ = ["CRAWL_SOURCES", "CrawlSource", "ErrorAnswer", "Parsed", "source_and_base"]


def source_and_base(source_name: str, base_url: str | None) -> tuple[CrawlSource, str]:
    """The crawl source named ``source_name`` and the base URL to use with it."""
    if source_name not in CRAWL_SOURCES:
        raise ImageProgramsError(
            f"unknown crawl source {source_name!r}", hint=f"use one of: {', '.join(CRAWL_SOURCES)}"
        )
    source = CRAWL_SOURCES[source_name]
    base = base_url or source.default_base_url
    if not base:
        raise ImageProgramsError(
            f"{source_name} has no default address", hint="pass --base-url (for git: the repository URL)"
        )
    return source, base.rstrip("/")
