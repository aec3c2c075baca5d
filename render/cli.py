"""``render``: validate, vet, profile and look at shader programs, headless (OpenGL through EGL)."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from corpus.cli_options import (
    Authors,
    Classes,
    Code,
    Dialects,
    Search,
    Sources,
    Spdx,
    Tags,
    program_filter,
)
from corpus.cliutils import DbOption, JsonOption, emit_json, entry_point, new_app, progress, warn
from render.cli_common import SandboxWorkers, catalogue_db, parse_sizes
from render.cli_pictures import add_picture_commands

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
    from render.context import device_info
    from render.engine import Engine

    with Engine(device=device) as engine:
        info = device_info(engine.ctx).to_json()
        info["extensions"] = len(engine.ctx.extensions)
        info["loop_guard"] = engine.loop_guard
        info["renderer_string"] = engine.renderer_string
    if json_out:
        emit_json(info)
        return
    kind = "CPU (software rasteriser)" if info["software"] else "GPU"
    guard = "on (every loop bounded)" if info["loop_guard"] else "off"
    typer.echo(f"renderer: {info['renderer_string']}\ndevice:   {kind}\nloop guard: {guard}")


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
    workers: SandboxWorkers = None,
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
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            help="The vetting policy to serve: --sizes should hold its size, and a size's frames "
            "stop at its frame-time bound (default: the built-in one).",
        ),
    ] = None,
    loop_guard: Annotated[
        str | None,
        typer.Option(
            "--loop-guard",
            show_default=False,
            help="Bound every loop of the programs, so that one that never ends cannot hang a GPU: "
            "auto (the default: on for a GPU, off for llvmpipe, which caps loops itself), on or off. "
            "A tripped guard is a timeout; the renderer string says when the guard was on.",
        ),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Compile, render and profile every program without a result for its code on this renderer.

    Each program runs in a worker process that is killed when its compile (and first frame) or
    any later frame outlives its deadline; killed and crashed workers are replaced and the run
    goes on. Results are stored as they come, so an interrupted run resumes where it stopped.
    A size's frames stop once three are timed and their median is over the vetting policy's
    frame-time bound (--policy): the policy rejects such a program whatever else it draws.
    Statuses: ok, compile_error, link_error, timeout, crash, nan, constant, blank, unsupported.

    Example: render validate --workers 2 --deadline 20
    """
    from render.guard import LOOP_GUARD_ENV, loop_guard_choice
    from render.validate import ValidateOptions, ValidationInterrupted, validate
    from render.vetting import Policy

    flt = program_filter(source, dialect, licence, spdx, tag, author, search, code, True)
    if loop_guard is not None:  # the workers read it when they create their engines
        os.environ[LOOP_GUARD_ENV] = loop_guard_choice(loop_guard)
    chosen = Policy.load(policy)
    vetting_size = chosen.size
    if (vetting_size, vetting_size) not in parse_sizes(sizes):
        square = f"{vetting_size}x{vetting_size}"
        warn(
            f"warning: --sizes {sizes} has no {square}, the size the vetting policy judges speed at: "
            f"render vet will vet none of these programs (e.g. --sizes {sizes},{vetting_size})"
        )
    options = ValidateOptions(
        workers=workers,
        compile_deadline=deadline,
        frame_deadline=frame_deadline,
        sizes=parse_sizes(sizes),
        memory_limit_mb=memory_limit,
        again=again,
        limit=limit or None,
        device=device,
        frame_ms_cap=chosen.max_frame_ms_median,  # what the policy rejects anyway is not drawn on
    )
    with contextlib.ExitStack() as bar:
        advance = [lambda n: None]

        def on_start(renderer: str, total: int) -> None:
            advance[0] = bar.enter_context(progress("validating", total=total))

        catalogue = catalogue_db().open_catalogue(db)
        try:
            report = validate(
                catalogue, flt, options, progress=lambda r: advance[0](1), on_start=on_start, notice=warn
            )
        except ValidationInterrupted as stopped:
            if json_out and stopped.report is not None:  # a script still gets what was done
                emit_json(stopped.report.to_json() | {"interrupted": True})
            raise
    if json_out:
        emit_json(report.to_json())
        return
    counts = ", ".join(f"{k} {v}" for k, v in sorted(report.statuses.items())) or "nothing to do"
    rate = f" ({report.programs / report.seconds:.1f}/s)" if report.seconds and report.programs else ""
    typer.echo(f"validated {report.programs} programs in {report.seconds:.1f} s{rate}: {counts}")
    typer.echo(f"renderer: {report.renderer}")
    if report.programs:
        typer.echo("next: render vet (decides which programs are fit for training)")


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

    The default policy keeps programs that rendered ok, draw a 256x256 frame in at most 60 ms and
    their first frame in at most 2.5 s on the validating machine (timed with the JIT render
    validate uses), are not near-constant and change over time (see render/vetting.py for every
    threshold). Verdicts are stored with the policy's
    hash: `corpus ls --vetted` and `corpus snapshot create --vetted` select on them.

    Example: render vet --explain shadertoy:ipEx11   (also: render vet --write-policy p.toml)
    """
    from corpus.paths import writable_file
    from render.vetting import CHECK_MEANINGS, Policy, advice, vet
    from render.vetting import explain as explain_fn

    chosen = Policy.load(policy)
    if write_policy is not None:
        writable_file(write_policy, "--write-policy").write_text(chosen.to_toml(), encoding="utf-8")
        typer.echo(f"wrote {write_policy} (policy {chosen.hash[:12]})")
        return
    catalogue = catalogue_db().open_catalogue(db)
    renderer = renderer or _this_renderer()
    if explain:
        report = explain_fn(catalogue, chosen, renderer, explain)
        if json_out:
            emit_json(report)
            return
        typer.echo(f"{report['program']}: {'VETTED' if report['vetted'] else 'not vetted'}")
        for check in report["checks"]:
            typer.echo(f"  {'pass' if check['passed'] else 'FAIL'}  {check['detail']}")
        log = (report["validation"] or {}).get("log")
        if log:  # the driver's compile or link log, or why the worker was stopped
            typer.echo("log:")
            typer.echo("\n".join(f"  {line}" for line in log.splitlines()))
        stored = report["stored"]
        if stored is None:
            typer.echo("stored verdict: none yet (run render vet)")
        elif not report["stored_is_current"]:
            typer.echo("stored verdict: made under another policy or for older code (run render vet)")
        return
    flt = program_filter(source, dialect, licence, spdx, tag, author, search, code, True)
    summary = vet(catalogue, chosen, renderer, flt)
    if json_out:
        emit_json(summary)
        return
    typer.echo(
        f"vetted {summary['vetted']} of {summary['programs']} programs (policy {summary['policy_hash'][:12]})"
    )
    rejected = summary["rejected_by_first_failed_check"]
    if rejected:
        typer.echo("rejected, by the first check each failed:")
    for name, n in rejected.items():
        typer.echo(f"  {name} ({CHECK_MEANINGS.get(name, 'a check of the policy')}): {n}")
    if summary["vetted"]:
        typer.echo("next: corpus ls --vetted, or corpus snapshot create NAME --vetted")
    for line in advice(summary, chosen):
        warn(line)


add_picture_commands(app)  # frames, video, sheet, bench: after the commands above, in --help too

main = entry_point(app, "render")

if __name__ == "__main__":
    sys.exit(main())
