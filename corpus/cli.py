"""``corpus``: query the catalogue, de-duplicate it, record takedowns, freeze snapshots."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from corpus.cli_db import db_app
from corpus.cli_exclusions import exclude_command, exclusions_app
from corpus.cli_options import (
    Authors,
    Classes,
    Code,
    Dialects,
    RendererFilter,
    Search,
    Sources,
    Spdx,
    Statuses,
    Tags,
    Vetted,
    program_filter,
)
from corpus.cli_snapshot import snapshot_app
from corpus.cliutils import (
    DbOption,
    JsonOption,
    db_module,
    emit_json,
    emit_rows,
    entry_point,
    new_app,
    progress,
    warn,
)
from corpus.errors import UsageProblem
from corpus.filters import SORT_NAMES

app = new_app("corpus", "Query the shader catalogue, de-duplicate it, and freeze snapshots for training.")
app.add_typer(snapshot_app, name="snapshot")
app.add_typer(db_app, name="db")

#: Seconds `corpus ls` gives the count behind "showing 100 of N" (PostgreSQL; past it, the planner's
#: estimate): at a million programs a two-filter count took 1 s where the listing took 22 ms, and
#: listing, count and estimate must stay within 100 ms (benchmarks/RESULTS.md, issue 12).
LS_COUNT_SECONDS = 0.03
LS_COLUMNS = (
    "program",
    "title",
    "author",
    "dialect",
    "licence_spdx",
    "licence_class",
    "duplicate_of",
    "status",
    "vetted",
)
JSON_COLUMNS = (
    "program",
    "source",
    "external_id",
    "title",
    "author",
    "url",
    "dialect",
    "created_at",
    "last_seen",
    "tags",
    "licence_spdx",
    "licence_class",
    "licence_evidence",
    "code_sha256",
    "duplicate_of",
    "duplicate_kind",
    "status",
    "vetted",
    "frame_ms_median",
)


@app.command("ls")
def ls_command(
    db: DbOption = None,
    source: Sources = None,
    dialect: Dialects = None,
    licence: Classes = None,
    spdx: Spdx = None,
    tag: Tags = None,
    author: Authors = None,
    search: Search = None,
    code: Code = None,
    status: Statuses = None,
    vetted: Vetted = None,
    renderer: RendererFilter = None,
    unique: Annotated[bool, typer.Option("--unique", help="Hide duplicates.")] = False,
    excluded: Annotated[
        bool, typer.Option("--excluded", help="List only the programs takedowns hide (hidden otherwise).")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", min=0, help="At most this many rows; 0 for all.")] = 100,
    sort: Annotated[str, typer.Option("--sort", help=f"Order: {', '.join(SORT_NAMES)}.")] = "key",
    json_out: JsonOption = False,
    csv_out: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
) -> None:
    """List programs, filtered. Programs a takedown covers are hidden; --excluded lists them.

    Example: corpus ls --licence permissive --dialect shadertoy --code "mainImage" --limit 20
    """
    from corpus.queries import count_programs_within, list_programs

    flt = program_filter(
        source, dialect, licence, spdx, tag, author, search, code, not unique, status, vetted, renderer
    )
    # a takedown hides a program here as in snapshots; --excluded shows only what takedowns hide
    flt.include_excluded = flt.only_excluded = excluded
    catalogue = db_module().open_catalogue(db)
    rows = list_programs(catalogue, flt, limit=limit or None, sort=sort)
    fmt = "json" if json_out else "csv" if csv_out else "table"
    # sorted by when programs were last seen, a table shows when (--json and --csv always do)
    table_columns = (*LS_COLUMNS, "last_seen") if sort == "seen" else LS_COLUMNS
    n = emit_rows(rows, JSON_COLUMNS if fmt != "table" else table_columns, fmt)
    if fmt == "table" and limit and n == limit:
        total, exact = count_programs_within(catalogue, flt, LS_COUNT_SECONDS)
        if not exact:
            warn(f"showing {n} of about {total:,} (estimated: counting takes longer); --limit 0 shows all")
        elif total > n:
            warn(f"showing {n} of {total:,}; --limit 0 shows all")


@app.command("show")
def show_command(
    program: Annotated[str, typer.Argument(help="SOURCE:ID, e.g. shadertoy:4dXGR8")],
    db: DbOption = None,
    code: Annotated[bool, typer.Option("--code", help="Print each pass's code too.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Show one program: metadata, licence evidence, passes, versions, duplicates, and its
    newest validation (with the compile or link log of a failed one).

    Example: corpus show shadertoy:ipEx01 --code
    """
    from corpus.queries import show_program

    info = show_program(db_module().open_catalogue(db), program)
    if json_out:
        emit_json(info)
        return
    lic = info["licence"] or {}
    lines = [
        f"{info['program']}  {info['title'] or ''}",
        f"  author     {info['author'] or '-'}",
        f"  url        {info['url'] or '-'}",
        f"  dialect    {info['dialect']}",
        f"  created    {info['created_at'] or '-'}   first seen {info['first_seen']}"
        f"   last seen {info['last_seen']}",
        f"  licence    {info['licence_spdx']} ({info['licence_class']}) from {info['licence_evidence']}"
        + (f", score {lic.get('score'):.2f}" if lic.get("score") is not None else ""),
    ]
    if lic.get("matched_text"):
        lines.append(f"             matched: {lic['matched_text'][:160]!r}")
    for cand in lic.get("candidates", [])[1:]:
        lines.append(f"             also: {cand['spdx']} from {cand['evidence']}")
    lines.append(f"  code       {info['code_sha256']} ({len(info['versions'])} version(s))")
    if info["excluded"]:
        lines.append(f"  EXCLUDED   by a takedown: {info['excluded']} (never in a new snapshot)")
    if info["parent"]:
        lines.append(f"  fork of    {info['parent']}")
    if info["duplicate_of"]:
        lines.append(
            f"  duplicate of {info['duplicate_of']} ({info['duplicate_kind']}, {info['duplicate_score']:.2f})"
        )
    for d in info["duplicates"]:
        lines.append(f"  duplicated by {d['program']} ({d['kind']})")
    for prov in info["provenance"]:
        lines.append(f"  seen       {prov['seen_at']} via {prov['via']}: {prov['location']}")
    lines += _validation_lines(info["validation"])
    for p in info["passes"]:
        inputs = (
            ", ".join(
                f"iChannel{i['channel']}={i['kind']}:{i['ref']}"
                for i in sorted(p["inputs"], key=lambda i: i["channel"])
            )
            or "no inputs"
        )
        lines.append(f"  pass       {p['name']} ({p['type']}, {len(p['code'])} chars; {inputs})")
    typer.echo("\n".join(lines))
    if code:
        for p in info["passes"]:
            typer.echo(f"\n// ---- {p['name']} ----\n{p['code']}")


#: Lines of a stored driver log that `corpus show` prints; --json has all of it.
SHOW_LOG_LINES = 30


def _validation_lines(validation: dict | None) -> list[str]:
    """The newest validation, and the compile or link log of one that failed."""
    if validation is None:
        return ["  validated  not yet (render validate)"]
    v = validation
    lines = [f"  validated  {v['status']} on {v['renderer']} ({v['validated_at']})"]
    log = (v["log"] or "").strip().splitlines() if v["status"] != "ok" else []
    for i, text in enumerate(log[:SHOW_LOG_LINES]):
        lines.append(f"  {'log' if i == 0 else '':<10} {text}")
    if len(log) > SHOW_LOG_LINES:
        lines.append(f"  {'':<10} ({len(log) - SHOW_LOG_LINES} more lines: corpus show --json has them all)")
    return lines


@app.command("licence")
def licence_command(
    program: Annotated[str, typer.Argument(help="SOURCE:ID, e.g. shadertoy:4dXGR8")],
    engine: Annotated[
        str, typer.Option(help="builtin (fast patterns, what imports use) or scancode (slow, thorough).")
    ] = "builtin",
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Detect a program's licence again from its stored code, to audit the stored verdict.

    --engine scancode runs ScanCode's licence index over the code comments (needs
    pip install 'imageprograms[scancode]'); nothing is written to the catalogue.

    Example: corpus licence shadertoy:ipEx04 --engine scancode
    """
    from corpus.licences import decide, detect_with_scancode
    from corpus.queries import show_program

    if engine not in ("builtin", "scancode"):
        raise UsageProblem(f"unknown engine {engine!r}", hint="use builtin or scancode")
    info = show_program(db_module().open_catalogue(db), program)
    passes = sorted(info["passes"], key=lambda p: p["type"] != "image")
    codes = [p["code"] for p in passes]
    if engine == "scancode":
        found = detect_with_scancode(codes)
    else:
        found = [v for v in decide(codes).candidates if v.evidence != "none"]
    rows = [
        {
            "spdx": v.spdx,
            "class": v.licence_class,
            "evidence": v.evidence,
            "score": v.score,
            "matched": v.matched_text,
        }
        for v in found
    ]
    stored = {
        "spdx": info["licence_spdx"],
        "class": info["licence_class"],
        "evidence": info["licence_evidence"],
    }
    if json_out:
        emit_json({"program": info["program"], "engine": engine, "stored": stored, "found_in_code": rows})
        return
    typer.echo(f"{info['program']}: stored {stored['spdx']} ({stored['class']}) from {stored['evidence']}")
    if not rows:
        typer.echo(f"  {engine}: no licence stated in the code")
    for r in rows:
        typer.echo(f"  {engine}: {r['spdx']} ({r['class']}), score {r['score']:.2f}: {r['matched'] or ''}")


@app.command("stats")
def stats_command(db: DbOption = None, json_out: JsonOption = False) -> None:
    """Counts per source, dialect, licence class and evidence, duplicates and snapshots.

    Example: corpus stats --json
    """
    from corpus.queries import stats

    info = stats(db_module().open_catalogue(db))
    if json_out:
        emit_json(info)
        return
    typer.echo(
        f"programs {info['programs']}  versions {info['versions']}  blobs {info['blobs']}"
        f"  code {_size(info['code_bytes'])}"
    )
    for title in (
        "by_source",
        "by_dialect",
        "by_licence_class",
        "by_licence_evidence",
        "top_spdx",
        "duplicates",
        "by_validation_status",
    ):
        values = "  ".join(f"{k} {v}" for k, v in info[title].items()) or "-"
        typer.echo(f"{title.replace('_', ' '):<22}{values}")
    typer.echo(f"{'exclusions':<22}{info['exclusions']}\n{'snapshots':<22}{info['snapshots']}")


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


@app.command("dedup")
def dedup_command(
    db: DbOption = None,
    threshold: Annotated[
        float, typer.Option(help="Estimated Jaccard similarity that makes a near duplicate.")
    ] = 0.85,
    workers: Annotated[
        int | None,
        typer.Option(min=0, help="Processes that hash programs. Default: one per core; 0: in this process."),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Find near-duplicate programs (MinHash + LSH over code tokens); exact ones are found on import.

    Each duplicate points at its earliest original; snapshots skip duplicates by default.

    Example: corpus dedup --threshold 0.85
    """
    from corpus.near_duplicates import mark_near_duplicates, near_duplicate_candidates

    if not 0 < threshold <= 1:
        raise UsageProblem("--threshold must be above 0 and at most 1", hint="the default is 0.85")
    if workers is None:
        workers = os.cpu_count() or 1
    catalogue = db_module().open_catalogue(db)
    with progress("hashing programs", total=near_duplicate_candidates(catalogue)) as advance:
        result = mark_near_duplicates(catalogue, threshold=threshold, workers=workers, progress=advance)
    if json_out:
        emit_json(result)
    else:
        typer.echo(
            f"{result['near_duplicates']} near duplicates among {result['programs']} programs"
            f" that are not exact duplicates (threshold {threshold})"
        )


@app.command("index")
def index_command(db: DbOption = None, json_out: JsonOption = False) -> None:
    """Bring the code-search index up to date (corpus ls --code also does this first).

    Imports only queue new and changed programs for the trigram index, which keeps them fast;
    run this after a big import so that the first code search answers at once.

    Example: corpus index
    """
    from corpus.queries import pending_code_index, refresh_code_index

    catalogue = db_module().open_catalogue(db)
    with progress("indexing code", total=pending_code_index(catalogue)) as advance:
        n = refresh_code_index(catalogue, progress=advance)
    if json_out:
        emit_json({"indexed": n})
    else:
        typer.echo(f"indexed {n} programs for code search")


app.command("exclude")(exclude_command)
app.add_typer(exclusions_app, name="exclusions")

main = entry_point(app, "corpus")

if __name__ == "__main__":
    sys.exit(main())
