"""Crawl sources: small, declarative modules that say which requests to make and how to parse
the answers. No retry, delay, robots or caching logic here: that is the fetcher's job."""

from harvest.sources.base import CrawlSource, ErrorAnswer, Parsed
from harvest.sources.git import GitRepositories
from harvest.sources.glslsandbox import GlslSandbox
from harvest.sources.shadertoy_api import ShadertoyApi
from harvest.sources.shadertoy_site import ShadertoySite

CRAWL_SOURCES: dict[str, CrawlSource] = {
    s.name: s for s in (GlslSandbox(), ShadertoyApi(), ShadertoySite(), GitRepositories())
}

__all__ = ["CRAWL_SOURCES", "CrawlSource", "ErrorAnswer", "Parsed"]
