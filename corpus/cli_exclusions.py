"""``corpus exclude`` and ``corpus exclusions``: takedowns, the programs and authors kept out of
every future snapshot and crawl (corpus.exclusions holds the rules; this is their command line)."""

from __future__ import annotations

from typing import Annotated

import typer

from corpus.cliutils import DbOption, JsonOption, db_module, emit_json, emit_rows, warn


def exclude_command(
    program: Annotated[str | None, typer.Argument(help="SOURCE:ID of the program to keep out.")] = None,
    author: Annotated[str | None, typer.Option(help="Keep out every program by this author.")] = None,
    source: Annotated[str | None, typer.Option(help="With --author: only on this source.")] = None,
    reason: Annotated[
        str, typer.Option(help="Required: why (who asked, when), kept with the takedown.")
    ] = "",
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Keep a program or an author out of every future snapshot and crawl (a takedown).

    Example: corpus exclude shadertoy:ipEx01 --reason "author's request by mail, 2026-11-20"
    """
    from corpus.exclusions import add_exclusion

    row = add_exclusion(
        db_module().open_catalogue(db, create=True),
        program=program,
        author=author,
        source=source,
        reason=reason,
    )
    if json_out:
        emit_json(row)
        return
    who = program or f"author {author}" + (f" on {source}" if source else "")
    if row["already_excluded"]:
        typer.echo(f"{who} was already excluded; nothing changed")
    else:
        typer.echo(f"excluded {who}: {row['reason']}")
    if row["programs_in_catalogue"] == 0:
        warn(f"note: no program in the catalogue matches {who} yet; future imports and crawls will skip it")


exclusions_app = typer.Typer(
    name="exclusions",
    help="List takedowns (corpus exclusions [--json]); undo one with corpus exclusions rm.",
    invoke_without_command=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@exclusions_app.callback(invoke_without_command=True)
def exclusions_command(ctx: typer.Context, db: DbOption = None, json_out: JsonOption = False) -> None:
    """List takedowns; `corpus exclusions rm` undoes one.

    Example: corpus exclusions --json
    """
    if ctx.invoked_subcommand is None:
        _list_exclusions(db, json_out)


@exclusions_app.command("ls")
def exclusions_ls(db: DbOption = None, json_out: JsonOption = False) -> None:
    """List takedowns (the same as `corpus exclusions`).

    Example: corpus exclusions ls --json
    """
    _list_exclusions(db, json_out)


def _list_exclusions(db: str | None, json_out: bool) -> None:
    from corpus.exclusions import list_exclusions

    rows = list_exclusions(db_module().open_catalogue(db))
    emit_rows(rows, ("program", "author", "source", "reason", "created_at"), "json" if json_out else "table")


@exclusions_app.command("rm")
def exclusions_rm(
    program: Annotated[str | None, typer.Argument(help="SOURCE:ID of the excluded program.")] = None,
    author: Annotated[str | None, typer.Option(help="The excluded author, as given before.")] = None,
    source: Annotated[str | None, typer.Option(help="With --author: the source it was given with.")] = None,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Undo a takedown (a typo, or a request withdrawn), named as it was added.

    Programs it kept out of imports and crawls come back with the next import or crawl that
    meets them; those already in the catalogue are listed and snapshotted again at once.

    Example: corpus exclusions rm shadertoy:ipEx01   (or: corpus exclusions rm --author NAME)
    """
    from corpus.exclusions import remove_exclusion

    row = remove_exclusion(db_module().open_catalogue(db), program=program, author=author, source=source)
    if json_out:
        emit_json(row)
        return
    # the takedown as it was stored: --author "emile" removes the one given as "Émile"
    where = f" on {row['source']}" if row.get("source") else ""
    who = program or f"author {row['author']}{where}"
    typer.echo(f"removed the takedown of {who} ({row['reason']})")
