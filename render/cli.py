"""``render``: validate, vet, profile and look at shader programs, headless (OpenGL through EGL)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from corpus.cli import Authors, Classes, Code, Dialects, Search, Sources, Spdx, Tags, _filter
from corpus.cliutils import DbOption, JsonOption, emit_json, entry_point, new_app, stderr, warn

app = new_app(
    "render",
    "Compile, validate, vet and look at shader programs headless (EGL: a GPU if present, else llvmpipe).",
)

Renderer = Annotated[
    str | None,
    typer.Option(
        "--renderer",
        help="Use validations of this renderer string (default: this machine's, from `render info`).",
    ),
]
PolicyOption = Annotated[
    Path | None, typer.Option("--policy", help="A TOML vetting policy (default: the built-in one).")
]


def _db():
    from corpus import db

    return db


def _this_renderer(device: str | None = None) -> str:
    from render.engine import Engine

    engine = Engine(device=device)
    try:
        return engine.renderer_string
    finally:
        engine.release()


@app.command("info")
def info_command(
    device: Annotated[
        str | None, typer.Option(help="auto (GPU if present, else llvmpipe), cpu, gpu, or an EGL index.")
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Show which device and driver rendering would use here.

    Example: render info --json
    """
    from render.context import create_context, device_info

    ctx = create_context(device)
    info = device_info(ctx).to_json()
    info["extensions"] = len(ctx.extensions)
    ctx.release()
    if json_out:
        emit_json(info)
        return
    kind = "CPU (software rasteriser)" if info["software"] else "GPU"
    typer.echo(f"renderer: {info['renderer_string']}\ndevice:   {kind}")


class _ValidateDisplay:
    """A progress bar with live status counts on a terminal; nothing when piped."""

    def __init__(self) -> None:
        self.bar = None
        self.task = None
        self.counts: dict[str, int] = {}

    def start(self, renderer: str, total: int) -> None:
        if not sys.stderr.isatty():
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("validating"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=stderr,
            transient=True,
        )
        self.bar.start()
        self.task = self.bar.add_task("", total=total)

    def advance(self, result: dict) -> None:
        self.counts[result["status"]] = self.counts.get(result["status"], 0) + 1
        if self.bar is not None:
            text = " ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
            self.bar.update(self.task, advance=1, description=text)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


@app.command("validate")
def validate_command(
    db: DbOption = None,
    source: Sources = None,
    dialect: Dialects = None,
    licence: Classes = None,
    spdx: Spdx = None,
    tag: Tags = None,
    author: Authors = None,
    search: Search = None,
    code: Code = None,
    workers: Annotated[int, typer.Option(min=0, help="Worker processes; 0: one per core.")] = 0,
    deadline: Annotated[
        float, typer.Option(min=0.1, help="Seconds to compile a program and draw its first frame.")
    ] = 30.0,
    frame_deadline: Annotated[float, typer.Option(min=0.1, help="Seconds for any later frame.")] = 10.0,
    sizes: Annotated[
        str, typer.Option(help="Profile resolutions, comma-separated (WxH or N for NxN).")
    ] = "64,256",
    memory_limit: Annotated[
        int, typer.Option(min=64, help="MiB of resident memory after which a worker is replaced.")
    ] = 2048,
    again: Annotated[bool, typer.Option(help="Validate programs that already have a result too.")] = False,
    limit: Annotated[int, typer.Option(min=0, help="At most this many programs; 0 for all.")] = 0,
    device: Annotated[str | None, typer.Option(help="auto, cpu, gpu or an EGL device index.")] = None,
    json_out: JsonOption = False,
) -> None:
    """Compile, render and profile every program without a result for its code on this renderer.

    Each program runs in a worker process that is killed when its compile (and first frame) or
    any later frame outlives its deadline; killed and crashed workers are replaced and the run
    goes on. Results are stored as they come, so an interrupted run resumes where it stopped.
    Statuses: ok, compile_error, link_error, timeout, crash, nan, constant, blank, unsupported.

    Example: render validate --workers 2 --deadline 20
    """
    from render.validate import ValidateOptions, validate

    flt = _filter(source, dialect, licence, spdx, tag, author, search, code, True)
    options = ValidateOptions(
        workers=workers,
        compile_deadline=deadline,
        frame_deadline=frame_deadline,
        sizes=_parse_sizes(sizes),
        memory_limit_mb=memory_limit,
        again=again,
        limit=limit or None,
        device=device,
    )
    display = _ValidateDisplay()
    try:
        report = validate(
            _db().open_catalogue(db), flt, options, progress=display.advance, on_start=display.start
        )
    finally:
        display.stop()
    if json_out:
        emit_json(report.to_json())
        return
    counts = ", ".join(f"{k} {v}" for k, v in sorted(report.statuses.items())) or "nothing to do"
    rate = f" ({report.programs / report.seconds:.1f}/s)" if report.seconds and report.programs else ""
    typer.echo(f"validated {report.programs} programs in {report.seconds:.1f} s{rate}: {counts}")
    typer.echo(f"renderer: {report.renderer}")
    if report.programs:
        typer.echo("next: render vet (decides which programs are fit for training)")


def _parse_sizes(text: str) -> tuple[tuple[int, int], ...]:
    from corpus.errors import UsageProblem

    sizes = []
    for part in text.split(","):
        part = part.strip().lower()
        try:
            w, h = part.split("x", 1) if "x" in part else (part, part)
            size = (int(w), int(h))
        except ValueError:
            raise UsageProblem(f"{part!r} is not a size", hint="write 256 or 320x240") from None
        if not (1 <= size[0] <= 8192 and 1 <= size[1] <= 8192):
            raise UsageProblem(f"{part!r} is out of range (1..8192)")
        sizes.append(size)
    if not sizes:
        raise UsageProblem("no size given", hint="e.g. --sizes 64,256")
    return tuple(sizes)


@app.command("vet")
def vet_command(
    db: DbOption = None,
    source: Sources = None,
    dialect: Dialects = None,
    licence: Classes = None,
    spdx: Spdx = None,
    tag: Tags = None,
    author: Authors = None,
    search: Search = None,
    code: Code = None,
    policy: PolicyOption = None,
    renderer: Renderer = None,
    explain: Annotated[
        str | None, typer.Option("--explain", metavar="SOURCE:ID", help="Say why this program is in or out.")
    ] = None,
    write_policy: Annotated[
        Path | None,
        typer.Option("--write-policy", help="Write the policy in use to this TOML file and stop."),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Decide which validated programs are fit for training, by a vetting policy.

    The default policy keeps programs that rendered ok, draw a 256x256 frame in at most 50 ms and
    their first frame in at most 5 s on the validating machine, are not near-constant and change
    over time (see render/vetting.py for every threshold). Verdicts are stored with the policy's
    hash: `corpus ls --vetted` and `corpus snapshot create --vetted` select on them.

    Example: render vet --explain shadertoy:ipEx11   (also: render vet --write-policy p.toml)
    """
    from render.vetting import Policy, vet
    from render.vetting import explain as explain_fn

    chosen = Policy.load(policy)
    if write_policy is not None:
        write_policy.write_text(chosen.to_toml(), encoding="utf-8")
        typer.echo(f"wrote {write_policy} (policy {chosen.hash[:12]})")
        return
    catalogue = _db().open_catalogue(db)
    renderer = renderer or _this_renderer()
    if explain:
        report = explain_fn(catalogue, chosen, renderer, explain)
        if json_out:
            emit_json(report)
            return
        typer.echo(f"{report['program']}: {'VETTED' if report['vetted'] else 'not vetted'}")
        for check in report["checks"]:
            typer.echo(f"  {'pass' if check['passed'] else 'FAIL'}  {check['detail']}")
        stored = report["stored"]
        if stored is None:
            typer.echo("stored verdict: none yet (run render vet)")
        elif not report["stored_is_current"]:
            typer.echo("stored verdict: made under another policy or for older code (run render vet)")
        return
    flt = _filter(source, dialect, licence, spdx, tag, author, search, code, True)
    summary = vet(catalogue, chosen, renderer, flt)
    if json_out:
        emit_json(summary)
        return
    typer.echo(
        f"vetted {summary['vetted']} of {summary['programs']} programs (policy {summary['policy_hash'][:12]})"
    )
    for name, n in summary["rejected_by_first_failed_check"].items():
        typer.echo(f"  rejected by {name}: {n}")
    if summary["vetted"]:
        typer.echo("next: corpus ls --vetted, or corpus snapshot create NAME --vetted")
    elif summary["programs"]:
        warn("nothing vetted: run `render validate` first, or see why with `render vet --explain SOURCE:ID`")


main = entry_point(app, "render")

if __name__ == "__main__":
    sys.exit(main())
