"""``corpus snapshot``: freeze selected programs into immutable snapshots, export and verify them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

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
    check_choices,
    program_filter,
)
from corpus.cliutils import DbOption, JsonOption, db_module, emit_json, emit_rows, new_app, warn
from corpus.filters import LICENCE_CLASSES

snapshot_app = new_app("snapshot", "Create, list, export and verify immutable snapshots.")


@snapshot_app.command("create")
def snapshot_create(
    name: Annotated[str, typer.Argument(help="A new, unique snapshot name.")],
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
    allow: Annotated[
        list[str],
        typer.Option("--allow", help="Also allow this licence class (default: permissive, public-domain)."),
    ] = None,
    include_duplicates: Annotated[bool, typer.Option(help="Keep duplicates too.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Freeze the selected programs into an immutable, named snapshot.

    By default it takes non-duplicate programs whose licence class is permissive or
    public-domain; --allow noncommercial (etc.) adds classes. Takedowns are always left out.

    With --vetted it takes only programs `render vet` accepted, and records the policy's hash.

    Example: corpus snapshot create s1 --vetted --allow noncommercial
    """
    from corpus.snapshots import create_snapshot

    allow = check_choices(allow, LICENCE_CLASSES, "licence class")
    flt = program_filter(
        source,
        dialect,
        licence,
        spdx,
        tag,
        author,
        search,
        code,
        include_duplicates,
        status,
        vetted,
        renderer,
    )
    summary = create_snapshot(db_module().open_catalogue(db), name, flt, allow=allow)
    if json_out:
        emit_json(summary.to_json())
    else:
        typer.echo(
            f"snapshot {summary.name}: {summary.entries} programs, manifest {summary.manifest_sha256[:16]}…"
        )


@snapshot_app.command("ls")
def snapshot_ls(db: DbOption = None, json_out: JsonOption = False) -> None:
    """List snapshots.

    Example: corpus snapshot ls
    """
    from corpus.snapshots import list_snapshots

    rows = [s.to_json() for s in list_snapshots(db_module().open_catalogue(db))]
    emit_rows(rows, ("name", "created", "entries", "manifest_sha256"), "json" if json_out else "table")


@snapshot_app.command("show")
def snapshot_show(
    name: str,
    db: DbOption = None,
    programs: Annotated[bool, typer.Option("--programs", help="List every entry too.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Show a snapshot: filters, size, licences (and entries with --programs).

    Example: corpus snapshot show s1 --programs
    """
    from corpus.snapshots import show_snapshot

    info = show_snapshot(db_module().open_catalogue(db), name, entries=programs)
    if json_out:
        emit_json(info)
        return
    typer.echo(f"{info['name']}: {info['entries']} programs, created {info['created']}")
    typer.echo(f"  manifest {info['manifest_sha256']}\n  filters  {json.dumps(info['filters'])}")
    for spdx, n in info["licences"].items():
        typer.echo(f"  {n:>6}  {spdx}")
    for line in info.get("programs", []):
        typer.echo(
            f"  {line['index']:>6}  {line['program']}  {line['title'] or ''}  ({line['licence_spdx']})"
        )


@snapshot_app.command("export")
def snapshot_export(
    name: str,
    out: Annotated[Path, typer.Argument(help="A new or empty folder to write the snapshot into.")],
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Export a snapshot folder: manifest.jsonl, programs/, snapshot.json, ATTRIBUTION.md, LICENCES.md.

    Example: corpus snapshot export s1 out/s1
    """
    from corpus.snapshots import export_snapshot

    folder = export_snapshot(db_module().open_catalogue(db), name, out)
    if json_out:
        emit_json({"name": name, "folder": str(folder)})
    else:
        typer.echo(f"exported {name} to {folder}")


@snapshot_app.command("verify")
def snapshot_verify(
    folder: Annotated[Path, typer.Argument(help="An exported snapshot folder.")],
    json_out: JsonOption = False,
) -> None:
    """Re-hash an exported snapshot folder against its manifest; exit 6 on any mismatch.

    Example: corpus snapshot verify out/s1
    """
    from corpus.snapshots import verification_error, verify_snapshot_dir

    report = verify_snapshot_dir(folder, raise_on_problems=False)
    if json_out:
        emit_json(report)
    else:
        for warning in report["warnings"]:
            warn(f"warning: {warning}")
    if not report["ok"]:
        raise verification_error(report)
    if not json_out:
        typer.echo(f"ok: {report['entries']} programs in {folder} match their manifest")


@snapshot_app.command("rm")
def snapshot_rm(name: str, db: DbOption = None) -> None:
    """Forget a snapshot and free its name; exported folders stay valid and programs stay.

    Example: corpus snapshot rm s1
    """
    from corpus.snapshots import delete_snapshot

    delete_snapshot(db_module().open_catalogue(db), name)
    typer.echo(f"removed snapshot {name}")
