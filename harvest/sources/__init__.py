"""Crawl sources: small, declarative modules that say which requests to make and how to parse
the answers. No retry, delay, robots or caching logic here: that is the fetcher's job."""

from corpus.errors import UsageProblem
from harvest.sources.base import CrawlSource, ErrorAnswer, Parsed
from harvest.sources.git import GitRepositories
from harvest.sources.glslsandbox import GlslSandbox
from harvest.sources.shadertoy_api import ShadertoyApi
from harvest.sources.shadertoy_site import ShadertoySite

CRAWL_SOURCES: dict[str, CrawlSource] = {
    s.name: s for s in (GlslSandbox(), ShadertoyApi(), ShadertoySite(), GitRepositories())
}

__all__ = [
    "CRAWL_SOURCES",
    "CrawlSource",
    "ErrorAnswer",
    "Parsed",
    "check_options",
    "crawl_source",
    "source_and_base",
]


def crawl_source(source_name: str) -> CrawlSource:
    """The crawl source named ``source_name``; an unknown name is a usage error listing the known."""
    if source_name not in CRAWL_SOURCES:
        raise UsageProblem(
            f"unknown crawl source {source_name!r}", hint=f"use one of: {', '.join(CRAWL_SOURCES)}"
        )
    return CRAWL_SOURCES[source_name]


def source_and_base(source_name: str, base_url: str | None) -> tuple[CrawlSource, str]:
    """The crawl source named ``source_name`` and the base URL to use with it."""
    source = crawl_source(source_name)
    base = base_url or source.default_base_url
    if not base:
        raise UsageProblem(
            f"{source_name} has no default address", hint="pass --base-url (for git: the repository URL)"
        )
    return source, base.rstrip("/")


#: Where each crawl option comes from on the command line, and which sources read it.
_OPTION_FLAGS = {
    "query": "--query",
    "sort": "--sort",
    "user": "--user",
    "since": "--since",
    "cache_dir": "--cache-dir",
}


def check_options(source: CrawlSource, options: dict) -> None:
    """Refuse, as a usage error, an option ``source`` does not read (``--user`` on GLSL Sandbox,
    which has no user pages) or a value it does not take (``--sort bogus``): a typo must not
    crawl something else than was asked, silently."""
    for name, flag in _OPTION_FLAGS.items():
        value = options.get(name)
        if value is None:
            continue
        if name not in source.options:
            readers = [s.name for s in CRAWL_SOURCES.values() if name in s.options]
            raise UsageProblem(
                f"{flag} does not apply to {source.name}",
                hint=f"leave {flag} out; it is for: {', '.join(readers)}",
            )
        allowed = source.options[name]
        if allowed is not None and value not in allowed:
            raise UsageProblem(
                f"unknown {flag[2:]} {value!r} for {source.name}", hint=f"use one of: {', '.join(allowed)}"
            )
