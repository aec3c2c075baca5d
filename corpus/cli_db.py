"""``corpus db``: the catalogue's schema, and moving a catalogue to another database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from corpus.cliutils import DbOption, JsonOption, db_module, emit_json, new_app, progress

db_app = new_app("db", "Create or upgrade the catalogue's schema; copy it to another database.")


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None, json_out: JsonOption = False) -> None:
    """Create the catalogue, or migrate an existing one to this version's schema.

    Refuses a catalogue written by a newer imageprograms.

    Example: corpus db upgrade --db catalogue.db
    """
    catalogue = db_module().connect(db, must_exist=False)
    before, after = db_module().upgrade(catalogue)
    if json_out:
        emit_json({"from": before, "to": after})
    elif before == after:
        typer.echo(f"already at {after}")
    else:
        typer.echo(f"upgraded {before or 'empty'} -> {after}")


@db_app.command("info")
def db_info(db: DbOption = None, json_out: JsonOption = False) -> None:
    """Show the catalogue's URL, schema revision and this version's head.

    Example: corpus db info
    """
    catalogue = db_module().connect(db)
    info = {
        "url": db_module().masked_url(catalogue.url),
        "revision": catalogue.current_revision(),
        "head": db_module().head_revision(),
    }
    if json_out:
        emit_json(info)
    else:
        typer.echo("\n".join(f"{k:<9}{v}" for k, v in info.items()))


@db_app.command("copy")
def db_copy(
    src: Annotated[str, typer.Argument(help="The catalogue to copy: a SQLite path or a database URL.")],
    dst: Annotated[
        str, typer.Argument(help="Where to: a new SQLite path, or an empty database's URL (postgresql://…).")
    ],
    replace: Annotated[
        bool, typer.Option("--replace", help="Empty DST first when it holds a catalogue already.")
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Copy a whole catalogue to another database: SQLite to PostgreSQL, and back.

    Lossless: ids, code, licences, validations and snapshots come out the same, and so do
    snapshot exports. DST gets the schema first and must hold no rows unless --replace; a copy
    that fails leaves it as it was. Both must be at this version's schema (corpus db upgrade).

    Example: corpus db copy catalogue.db postgresql://me@dbhost/catalogue
    """
    from corpus.transfer import copy_catalogue, count_rows

    source = db_module().open_catalogue(src)
    new_file = db_module().sqlite_file(dst)
    if new_file is not None and new_file.exists():
        new_file = None  # not ours to remove if the copy fails
    target = db_module().open_catalogue(dst, create=True)
    try:
        with progress("copying rows", total=count_rows(source)) as advance:
            report = copy_catalogue(source, target, replace=replace, progress=advance)
    except BaseException:
        target.close()
        if new_file is not None:
            for path in (new_file, Path(f"{new_file}-wal"), Path(f"{new_file}-shm")):
                path.unlink(missing_ok=True)
        raise
    shown = {"from": db_module().display_url(source.url), "to": db_module().display_url(target.url)}
    if json_out:
        emit_json(shown | {"rows": report.rows, "total": report.total})
        return
    typer.echo(
        f"copied {report.total:,} rows ({report.rows['program']:,} programs,"
        f" {report.rows['snapshot']:,} snapshots) from {shown['from']} to {shown['to']}"
    )
    if report.rows["program"]:
        typer.echo(f"the code-search index builds on the first code search, or now: corpus index --db {dst}")
