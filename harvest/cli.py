"""``harvest``: bring programs into the catalogue from local dumps and folders, and by polite crawls
of sites and git repositories."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from corpus.cliutils import DbOption, JsonOption, emit_json, emit_rows, entry_point, new_app, progress, warn
from corpus.errors import ExitCode, UsageProblem
from corpus.sources import SOURCES
from harvest.importers import FORMATS

FORMAT_DESCRIPTIONS = {
    "shaders21k": "a Shaders21k folder or zip: shadertoy/<c>/<id>.fragment, twigl/fragments + modes",
    "shadertoys-jsonl": "JSON lines of flattened Shadertoy records (id, name, author, image_code, license)",
    "shadertoy-json": "Shadertoy API responses or bare shaders: one, an array, JSON lines, a folder of .json",
    "glslsandbox-dump": 'GLSL Sandbox documents {"_id", "versions": [{"code"}], "parent", "user"}',
    "gl-transitions": "gl-transitions JSON (name, author, license, glsl)",
    "dir": "a folder or git checkout of .frag .fs .fsh .glsl .shader files; its LICENSE applies",
}

app = new_app(
    "harvest",
    "Grow the shader catalogue from dumps and folders (import) and by polite crawls of sites and git"
    " repositories (crawl).",
)


@app.command("import")
def import_command(
    paths: Annotated[list[Path], typer.Argument(help="Dump files or folders to import.")],
    db: DbOption = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help=f"The format, when detection is not enough: {', '.join(FORMATS)}."),
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="Stop at the first bad record instead of skipping it.")
    ] = False,
    again: Annotated[bool, typer.Option(help="Re-read a file that was already imported completely.")] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Records per committed transaction.")] = 2000,
    json_out: JsonOption = False,
) -> None:
    """Import dumps: Shaders21k folders or zips, shadertoys JSON lines, Shadertoy JSON, GLSL Sandbox
    dumps, gl-transitions JSON, and folders or git checkouts of shader files.

    Licences are detected and exact duplicates marked on the way in. Bad records are reported
    with file and line and skipped (--strict stops instead). An interrupted import resumes where
    it stopped when run again; a file already imported is skipped (--again re-reads it).

    Example: harvest import examples/shadertoys.jsonl examples/shaders21k examples/repo
    """
    from corpus.db import open_catalogue
    from harvest.importers import check_format
    from harvest.importing import import_path, progress_total

    if fmt is not None:
        check_format(fmt)
    catalogue = open_catalogue(db, create=True)
    empty: list[str] = []
    for path in paths:
        total = progress_total(path, fmt)
        unit = " (bytes)" if total is not None else ""
        with progress(f"importing {path.name}{unit}", total=total) as advance:
            report = import_path(
                catalogue, path, fmt, strict=strict, again=again, batch_size=batch_size, progress=advance
            )
        if not report.already_imported and report.records == 0 and not report.resumed_from:
            empty.append(_nothing_read(report))
        if json_out:
            emit_json(report.to_json())
            continue
        if report.already_imported:
            typer.echo(f"{path}: already imported, nothing to do (--again re-reads it)")
            continue
        resumed = f", resumed after item {report.resumed_from}" if report.resumed_from else ""
        duplicates = (
            f", {report.duplicates_marked} duplicate marks changed" if report.duplicates_marked else ""
        )
        typer.echo(
            f"{path} ({report.format}): {report.added} added, {report.updated} updated, "
            f"{report.unchanged} unchanged, {report.excluded} excluded, {report.bad_count} bad"
            f"{duplicates}{resumed} in {report.seconds:.1f} s"
        )
        for bad in report.bad[:20]:
            warn(f"  skipped {bad.location}: {bad.reason}")
        if report.bad_count > 20:
            warn(f"  … and {report.bad_count - 20} more bad records (--json lists them)")
    for message in empty:
        warn(f"error: {message}")
    if empty:
        warn(f"hint: {ExitCode.INPUT.hint}")
        raise typer.Exit(ExitCode.INPUT)


def _nothing_read(report) -> str:
    if report.bad_count:
        return (
            f"every record in {report.path} was bad ({report.bad_count}) when read as {report.format}:"
            " if that is the wrong format, pass the right one with --format"
        )
    return (
        f"no programs found in {report.path} (read as {report.format});"
        f" formats: {', '.join(FORMATS)} (see: harvest formats)"
    )


@app.command("crawl")
def crawl_command(
    source: Annotated[
        str, typer.Argument(help="The crawl source: glslsandbox, shadertoy-api, shadertoy-site or git.")
    ],
    db: DbOption = None,
    base_url: Annotated[
        str | None, typer.Option(help="Another host or a mirror (tests use loopback); git: the repository.")
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight per host.")] = 2,
    delay: Annotated[
        float, typer.Option(min=0.0, help="Seconds between request starts per host (jittered).")
    ] = 1.0,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many programs are stored.")
    ] = None,
    budget: Annotated[int | None, typer.Option(min=1, help="At most this many HTTP requests.")] = None,
    contact: Annotated[
        str | None, typer.Option(help="A URL or address for site operators, in the User-Agent.")
    ] = None,
    key: Annotated[
        str | None, typer.Option(envvar="SHADERTOY_API_KEY", help="API key (shadertoy-api); never stored.")
    ] = None,
    query: Annotated[
        str | None, typer.Option(help="shadertoy-api, shadertoy-site: only shaders matching this search.")
    ] = None,
    sort: Annotated[
        str | None,
        typer.Option(
            help="Order (shadertoy-api --query, shadertoy-site): newest, popular, love, hot. Default: newest."
        ),
    ] = None,
    user: Annotated[
        str | None, typer.Option(help="shadertoy-site: crawl this user's pages instead of browsing.")
    ] = None,
    cache_dir: Annotated[
        Path | None, typer.Option(help="git: where clones are kept (default: beside the catalogue).")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="Incremental: stop paging a newest-first listing once it is past this date"
            " (2024-05-01 or 2024-05-01T12:00:00Z; UTC unless a zone is given)."
        ),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Crawl a site politely into the catalogue; run it again to resume after a crash or a kill,
    or, once a crawl has finished, to pick up what is new (start pages are asked for again with
    conditional GETs; programs fetched before are not fetched again).

    On a terminal a live display shows requests, programs, errors and each host's rate; piped,
    the command prints one summary line (or the report with --json).

    Politeness (per-host concurrency and delay, robots.txt, Retry-After, backoff) is the
    fetcher's; a bot challenge or block page stops the source with an explanation.

    Example: harvest crawl glslsandbox --limit 200 --contact https://example.org/me
    (or: harvest crawl git --base-url https://github.com/owner/shaders.git)
    """
    from corpus.db import open_catalogue
    from harvest.crawling import crawl
    from harvest.display import live_progress
    from harvest.fetcher import FetchPolicy
    from harvest.sources import crawl_source

    policy = FetchPolicy(concurrency=concurrency, delay=delay, budget=budget, contact=contact)
    if sort is None and "sort" in crawl_source(source).options:
        sort = "newest"
    options = {"query": query, "sort": sort, "user": user, "cache_dir": cache_dir, "since": _epoch(since)}
    catalogue = open_catalogue(db, create=True)
    _say_where_crawl_starts(catalogue, source)
    with live_progress(source) as progress:
        report = crawl(
            catalogue,
            source,
            base_url=base_url,
            policy=policy,
            limit=limit,
            key=key,
            options=options,
            progress=progress,
        )
    if json_out:
        emit_json(report.to_json())
    else:
        typer.echo(
            f"{source}: {report.requests_done} requests done, {report.added} programs added,"
            f" {report.updated} updated, {report.failed} failed, {report.parse_errors} parse errors"
            f" in {report.seconds:.1f} s"
        )
    for skipped in report.skipped[:20]:
        warn(f"  skipped {skipped}")
    if len(report.skipped) > 20:
        warn(f"  … and {len(report.skipped) - 20} more skipped (--json lists them)")
    if report.blocked:
        warn(f"error: {report.blocked}")
        warn("hint: use a dump (harvest import), the site's API with a key, or try much later")
        raise typer.Exit(ExitCode.SOURCE_BLOCKED)
    if report.budget_spent:
        warn(f"stopped: the {report.budget_spent}; the requests left stay pending")
        warn("hint: run the same command again to go on (with a larger --budget, or none)")
    _tell_failures(source, report)


def _say_where_crawl_starts(catalogue, source: str) -> None:
    """One line on stderr saying what a crawl of a source crawled before will do: go on with
    what is pending, or ask its start pages again; and that requests which failed before are
    not retried (else a rerun after a failed crawl does nothing and says nothing)."""
    from harvest.frontier import Frontier
    from harvest.sources import crawl_source

    crawl_source(source)  # an unknown name is a usage error, before anything is said
    if source == "git":  # a git crawl syncs its clone: no frontier
        return
    counts = Frontier(catalogue, source).counts()
    left = counts["pending"] + counts["in_flight"]
    if left:
        warn(f"{source}: resuming an earlier crawl: {left} requests still to do")
    elif counts["done"] or counts["failed"] or counts["blocked"]:
        warn(f"{source}: the earlier crawl finished: asking its start pages again for what is new")
    parked = counts["failed"] + counts["blocked"]
    if parked:
        warn(
            f"{source}: {parked} requests that failed (or were blocked) in an earlier crawl are not"
            f" retried: harvest retry-failed {source} queues them again"
        )


def _tell_failures(source: str, report) -> None:
    """Failed requests are said with how to see and retry them; a crawl in which every request
    failed is an error (exit 7, a fetch that failed for good), not a quiet summary."""
    failed = report.failed + report.parse_errors
    if not failed:
        return
    see = "harvest status --failed lists them with their errors"
    retry = f"harvest retry-failed {source} queues them again, then run this crawl again"
    if report.all_failed:
        warn(f"error: every request of this crawl failed ({failed}); the last: {report.last_failure}")
        warn(f"hint: check the address (--base-url) and the network; {see}; {retry}")
        raise typer.Exit(ExitCode.FETCH_FAILED)
    warn(f"{failed} requests failed ({see})")
    warn(f"hint: {retry}")


def _epoch(date: str | None) -> float | None:
    """``--since`` as UTC epoch seconds: what sources compare a program's date with."""
    if date is None:
        return None
    from datetime import UTC, datetime

    try:
        when = datetime.fromisoformat(date.strip())
    except ValueError:
        raise UsageProblem(
            f"--since {date!r} is not a date", hint="give one like 2024-05-01 or 2024-05-01T12:00:00Z"
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


@app.command("status")
def status_command(
    failed: Annotated[
        bool, typer.Option("--failed", help="List the failed requests with their last error instead.")
    ] = False,
    source: Annotated[str | None, typer.Option(help="Only this crawl source.")] = None,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Show each crawl source's frontier: done, pending, in flight, failed, blocked; or, with
    --failed, each failed request with its last error (what harvest retry-failed queues again).

    Example: harvest status --failed --source glslsandbox
    """
    from corpus.db import open_catalogue
    from harvest.frontier import Frontier
    from harvest.sources import CRAWL_SOURCES, crawl_source

    names = list(CRAWL_SOURCES) if source is None else [crawl_source(source).name]
    catalogue = open_catalogue(db)
    fmt = "json" if json_out else "table"
    if not failed:
        rows = [{"source": name, **Frontier(catalogue, name).counts()} for name in names]
        emit_rows(rows, ("source", "done", "pending", "in_flight", "failed", "blocked"), fmt)
        return
    rows = [row for name in names for row in Frontier(catalogue, name).failures()]
    if not rows and not json_out:
        typer.echo("no failed requests")
        return
    emit_rows(rows, ("source", "url", "attempts", "status", "error"), fmt)


@app.command("reparse")
def reparse_command(
    source: Annotated[str, typer.Argument(help="The crawl source whose raw documents to parse again.")],
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Rebuild programs from the raw documents a crawl kept, with no network (after a parser fix).

    Example: harvest reparse glslsandbox
    """
    from corpus.db import open_catalogue
    from harvest.reparse import reparse

    report = reparse(open_catalogue(db), source)
    if json_out:
        emit_json(report.to_json())
    else:
        typer.echo(
            f"{source}: {report.documents} raw documents, {report.added} programs added,"
            f" {report.updated} updated, {report.unchanged} unchanged, {report.parse_errors} do not parse"
        )


@app.command("retry-failed")
def retry_failed_command(
    source: Annotated[str, typer.Argument(help="The crawl source whose failed requests to queue again.")],
    blocked: Annotated[bool, typer.Option(help="Also requests parked when the site blocked us.")] = False,
    db: DbOption = None,
) -> None:
    """Queue a source's failed requests again (and blocked ones with --blocked); then crawl.

    Example: harvest retry-failed glslsandbox && harvest crawl glslsandbox
    """
    from corpus.db import open_catalogue
    from harvest.frontier import Frontier
    from harvest.sources import crawl_source

    n = Frontier(open_catalogue(db), crawl_source(source).name).retry_failed(include_blocked=blocked)
    typer.echo(f"{n} requests of {source} queued again")


@app.command("sources")
def sources_command(json_out: JsonOption = False) -> None:
    """List the sites programs come from, with their default licence, terms and crawl sources.

    Example: harvest sources --json
    """
    from harvest.sources import CRAWL_SOURCES

    rows = [
        {
            "name": s.name,
            "crawled_by": ", ".join(c.name for c in CRAWL_SOURCES.values() if c.site == s.name) or "-",
            "base_url": s.base_url,
            "default_licence": s.default_licence or "none (all rights reserved)",
            "terms_url": s.terms_url,
            "description": s.description,
        }
        for s in SOURCES.values()
    ]
    columns = ("name", "crawled_by", "base_url", "default_licence", "terms_url")
    emit_rows(rows, columns, "json" if json_out else "table")


@app.command("formats")
def formats_command() -> None:
    """List the dump formats `harvest import` reads.

    Example: harvest formats
    """
    for f in FORMATS:
        typer.echo(f"{f:<18}{FORMAT_DESCRIPTIONS[f]}")


main = entry_point(app, "harvest")

if __name__ == "__main__":
    sys.exit(main())
