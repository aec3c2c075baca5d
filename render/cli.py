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
from corpus.cliutils import DbOption, JsonOption, emit_json, entry_point, new_app, progress, warn
from corpus.errors import ExitCode

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
SandboxWorkers = Annotated[
    int | None,
    typer.Option(
        min=0,
        show_default=False,
        help="Worker processes that render the untrusted shaders; default: one per core. "
        "0 (render in this process) is refused: a shader that hangs or crashes the driver would "
        "take the command down.",
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
    from render.engine import LOOP_GUARD_ENV, loop_guard_choice
    from render.validate import ValidateOptions, ValidationInterrupted, validate
    from render.vetting import Policy

    flt = program_filter(source, dialect, licence, spdx, tag, author, search, code, True)
    if loop_guard is not None:  # the workers read it when they create their engines
        os.environ[LOOP_GUARD_ENV] = loop_guard_choice(loop_guard)
    chosen = Policy.load(policy)
    vetting_size = chosen.size
    if (vetting_size, vetting_size) not in _parse_sizes(sizes):
        square = f"{vetting_size}x{vetting_size}"
        warn(
            f"warning: --sizes {sizes} has no {square}, the size the vetting policy judges speed at: "
            f"render vet will vet none of these programs (e.g. --sizes {sizes},{vetting_size})"
        )
    options = ValidateOptions(
        workers=workers,
        compile_deadline=deadline,
        frame_deadline=frame_deadline,
        sizes=_parse_sizes(sizes),
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

        catalogue = _db().open_catalogue(db)
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


# ---------------------------------------------------------------------------------------------
# Looking at programs: frames, video, sheet, bench


class _Watchdog:
    """Kill this command with a clear message when no heartbeat comes for ``seconds``.

    A shader stuck inside the driver cannot be interrupted from within the process (Ctrl-C waits
    for the driver too), so a forked child that only sleeps and reads a pipe does it (forked
    before the command creates its engine: a fork copies none of the GL driver's threads, and a
    child forked while they hold a lock could deadlock): each
    ``beat()`` (before every frame) restarts its clock; when the clock runs out it prints the error
    and SIGKILLs the command. Used by the commands that render in this process; ``render
    validate`` and ``render sheet`` use killable worker processes instead."""

    def __init__(self, seconds: float, what: str) -> None:
        self.seconds, self.what = seconds, what
        self.child: int | None = None

    def __enter__(self) -> _Watchdog:
        import os
        import select
        import signal

        read_end, self.write_end = os.pipe()
        parent = os.getpid()
        message = (
            f"error: {self.what} drew nothing for {self.seconds:g} s and was stopped (the shader may "
            f"hang the driver; exit code {int(ExitCode.HUNG)})\nhint: {ExitCode.HUNG.hint}\n"
        ).encode()
        self.child = os.fork()
        if self.child == 0:  # the watchdog: no GL, no Python beyond the loop below
            try:
                os.close(self.write_end)
                while True:
                    ready, _, _ = select.select([read_end], [], [], self.seconds)
                    if not ready:
                        os.write(2, message)
                        os.kill(parent, signal.SIGKILL)
                        break
                    if not os.read(read_end, 4096):  # the command finished
                        break
            finally:
                os._exit(0)
        os.close(read_end)
        return self

    def beat(self, *_: object) -> None:
        import os

        os.write(self.write_end, b".")

    def __exit__(self, *exc: object) -> None:
        import os

        os.close(self.write_end)
        if self.child:
            os.waitpid(self.child, 0)


Size = Annotated[str, typer.Option("--size", help="Picture size: N for NxN, or WxH.")]
Deadline = Annotated[
    float,
    typer.Option(min=0.1, help="Seconds any one frame (or the compile and first frame) may take."),
]
Device = Annotated[str | None, typer.Option(help="auto, cpu, gpu or an EGL device index.")]
ProgramKey = Annotated[
    str | None, typer.Argument(help="SOURCE:ID, e.g. shadertoy:4dXGR8 (or use --code).", show_default=False)
]
CodeFile = Annotated[
    Path | None,
    typer.Option("--code", help="Render this one-pass shader file instead of a catalogue program."),
]
CodeDialect = Annotated[str, typer.Option("--dialect", help="The dialect of --code.")]


def _one_size(text: str) -> tuple[int, int]:
    from corpus.errors import UsageProblem

    sizes = _parse_sizes(text)
    if len(sizes) != 1:
        raise UsageProblem(f"one size only, got {text!r}", hint="e.g. --size 256 or --size 320x240")
    return sizes[0]


def _parse_times(text: str) -> list[float]:
    from corpus.errors import UsageProblem

    try:
        times = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageProblem(f"{text!r} is not a list of seconds", hint="e.g. --times 0,1.5,3") from None
    if not times or any(t < 0 for t in times):
        raise UsageProblem("times must be one or more seconds >= 0", hint="e.g. --times 0,1.5,3")
    return times


def _program_to_render(program: str | None, code: Path | None, dialect: str, db: str | None):
    """The program a command renders: a catalogue program, or a shader file given with --code."""
    from corpus.errors import UsageProblem
    from render.program import RenderProgram

    if (program is None) == (code is None):
        raise UsageProblem("name one program", hint="give SOURCE:ID, or --code FILE for a shader file")
    if code is not None:
        from corpus.records import DIALECTS

        check_choices([dialect], DIALECTS, "dialect")
        try:
            text = code.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageProblem(f"cannot read {code}: {exc.strerror}") from None
        return RenderProgram.single(text, dialect, key=f"file:{code.name}")
    from corpus.validations import load_program

    return RenderProgram.from_item(load_program(_db().open_catalogue(db), program))


@app.command("frames")
def frames_command(
    program: ProgramKey = None,
    db: DbOption = None,
    code: CodeFile = None,
    dialect: CodeDialect = "shadertoy",
    size: Size = "256",
    times: Annotated[str, typer.Option(help="Seconds to render at, comma-separated.")] = "0,1.5,3",
    out: Annotated[Path, typer.Option("--out", help="Folder for the PNG files.")] = Path("frames"),
    deadline: Deadline = 60.0,
    device: Device = None,
    json_out: JsonOption = False,
) -> None:
    """Render one program at a few times into PNG files (SOURCE-ID_000_t1.5s.png …).

    Programs with feedback are run through the frames before each time, as a browser would.

    Example: render frames shadertoy:ipEx01 --size 256 --times 0,1.5,3 --out frames/
    """
    from render.engine import Engine
    from render.pictures import frames

    chosen = _program_to_render(program, code, dialect, db)
    size_wh, when = _one_size(size), _parse_times(times)
    # the watchdog forks before the engine exists: the GL driver's threads must not be forked
    with _Watchdog(deadline, f"render frames {chosen.key}") as dog, Engine(device=device) as engine:
        dog.beat()
        paths = frames(engine, chosen, size_wh, when, out, before_frame=dog.beat)
    if json_out:
        emit_json(
            {"program": chosen.key, "size": list(size_wh), "times": when, "files": [str(p) for p in paths]}
        )
        return
    for path in paths:
        typer.echo(str(path))


@app.command("video")
def video_command(
    program: ProgramKey = None,
    out: Annotated[Path, typer.Option("--out", help="The video file: *.mp4 (H.264) or *.gif.")] = Path(
        "program.mp4"
    ),
    db: DbOption = None,
    code: CodeFile = None,
    dialect: CodeDialect = "shadertoy",
    seconds: Annotated[float, typer.Option(min=0.01, help="Length in seconds.")] = 4.0,
    fps: Annotated[float, typer.Option(min=0.1, help="Frames per second.")] = 30.0,
    start: Annotated[float, typer.Option(min=0.0, help="Time of the first frame, in seconds.")] = 0.0,
    size: Size = "256",
    deadline: Deadline = 60.0,
    device: Device = None,
    json_out: JsonOption = False,
) -> None:
    """Render a few seconds of one program into an MP4 or a GIF (chosen by --out's suffix).

    Example: render video shadertoy:ipEx01 --out plasma.gif --seconds 2 --fps 15 --size 128
    """
    from render.engine import Engine
    from render.pictures import video

    chosen = _program_to_render(program, code, dialect, db)
    size_wh = _one_size(size)
    with _Watchdog(deadline, f"render video {chosen.key}") as dog, Engine(device=device) as engine:
        dog.beat()
        path = video(engine, chosen, size_wh, seconds, fps, out, start=start, before_frame=dog.beat)
    frames_written = max(1, round(seconds * fps))
    if json_out:
        emit_json({"program": chosen.key, "file": str(path), "frames": frames_written, "fps": fps})
        return
    typer.echo(f"wrote {path} ({frames_written} frames at {fps:g} fps, {size_wh[0]}x{size_wh[1]})")


def _selected(db, flt, limit: int, hint: str = "check them with `corpus ls`") -> tuple[list[dict], object]:
    """The listing rows (with status and verdict) of the programs a filter selects."""
    from corpus.errors import NotFoundError
    from corpus.queries import list_programs

    catalogue = _db().open_catalogue(db)
    rows = list(list_programs(catalogue, flt, limit=limit or None))
    if not rows:
        raise NotFoundError("no program matches these filters", hint=hint)
    return rows, catalogue


@app.command("sheet")
def sheet_command(
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
    limit: Annotated[int, typer.Option(min=0, help="At most this many programs; 0 for all.")] = 64,
    out: Annotated[Path, typer.Option("--out", help="The PNG to write.")] = Path("sheet.png"),
    size: Size = "128",
    times: Annotated[str, typer.Option(help="Seconds; several make each tile a strip of frames.")] = "1.0",
    columns: Annotated[int, typer.Option(min=1, help="Tiles a row.")] = 8,
    caption: Annotated[
        str,
        typer.Option(
            help="What a tile says under its SOURCE:ID: 'status' (status and verdict) or 'reason' "
            "(why the stored vetting verdict rejects it, or 'vetted').",
        ),
    ] = "status",
    random_seed: Annotated[
        int | None,
        typer.Option(
            "--random",
            metavar="SEED",
            help="Take --limit programs at random among all the filters select (the same seed, the "
            "same programs) instead of the first by key.",
        ),
    ] = None,
    deadline: Deadline = 10.0,
    workers: SandboxWorkers = None,
    json_out: JsonOption = False,
) -> None:
    """Draw a contact sheet: one labelled tile per program (SOURCE:ID and status, or why it was
    not vetted), from any `corpus ls` filter. Tiles render in worker processes killed after
    --deadline, so a hanging or crashing shader becomes a placeholder tile that says why.

    Example: render sheet --not-vetted --random 1 --caption reason --limit 64 --out rejected.png
    """
    import random

    from corpus.errors import UsageProblem
    from corpus.validations import load_program, program_verdict
    from render.sheet import contact_sheet

    if caption not in ("status", "reason"):
        raise UsageProblem(f"unknown caption {caption!r}", hint="use --caption status or --caption reason")
    flt = program_filter(
        source, dialect, licence, spdx, tag, author, search, code, not unique, status, vetted, renderer
    )
    rows, catalogue = _selected(db, flt, 0 if random_seed is not None else limit)
    if random_seed is not None and limit and len(rows) > limit:
        rows = random.Random(random_seed).sample(rows, limit)
    labels = {}
    for row in rows:
        verdict = {True: "vetted", False: "not vetted"}.get(row.get("vetted"), "")
        labels[row["program"]] = ", ".join(x for x in (row.get("status"), verdict) if x)
        if caption == "reason":
            stored = program_verdict(catalogue, row["program"])
            if stored is None or not stored["current_code"]:
                labels[row["program"]] = "no verdict on this code: run render vet"
            else:
                labels[row["program"]] = "vetted" if stored["vetted"] else "\n".join(stored["reasons"])
    items = [load_program(catalogue, row["program"]) for row in rows]
    with progress("rendering tiles", total=len(items)) as advance:
        report = contact_sheet(
            None,
            items,
            _one_size(size),
            _parse_times(times),
            columns,
            out,
            statuses=labels,
            deadline=deadline,
            workers=workers,
            progress=lambda result: advance(1),
        )
    if json_out:
        emit_json(report.to_json())
        return
    failed = f"; {len(report.failed)} drew nothing ({', '.join(sorted(set(report.failed.values())))})"
    typer.echo(f"wrote {report.path}: {report.tiles} programs{failed if report.failed else ''}")


@app.command("bench")
def bench_command(
    db: DbOption = None,
    source: Sources = None,
    dialect: Dialects = None,
    licence: Classes = None,
    spdx: Spdx = None,
    tag: Tags = None,
    author: Authors = None,
    search: Search = None,
    code: Code = None,
    status: Annotated[
        list[str],
        typer.Option("--status", help="Only programs whose validation ended so (repeatable; default: ok)."),
    ] = None,
    vetted: Vetted = None,
    renderer: RendererFilter = None,
    limit: Annotated[int, typer.Option(min=0, help="At most this many programs; 0 for all.")] = 20,
    sizes: Annotated[str, typer.Option(help="Resolutions, comma-separated (N or WxH).")] = "64,128,256",
    frames: Annotated[int, typer.Option(min=1, help="Timed frames per program and size.")] = 30,
    deadline: Annotated[
        float, typer.Option(min=0.1, help="Seconds one program may take over all sizes.")
    ] = 120.0,
    device: Device = None,
    json_out: JsonOption = False,
) -> None:
    """Measure images/s of the batch rendering path (compile once, render and read into a
    preallocated buffer) for a set of programs at given resolutions. Programs render in this
    process, so only those that validated ok are taken unless --status says otherwise.

    Example: render bench --vetted --sizes 64,128,256 --frames 30 --json
    """
    from corpus.validations import load_program
    from render.engine import Engine
    from render.pictures import bench
    from render.program import RenderProgram

    flt = program_filter(
        source, dialect, licence, spdx, tag, author, search, code, True, status or ["ok"], vetted, renderer
    )
    hint = (
        "check them with `corpus ls`" if status else "run `render validate` first (bench takes ok programs)"
    )
    rows, catalogue = _selected(db, flt, limit, hint)
    programs = [RenderProgram.from_item(load_program(catalogue, row["program"])) for row in rows]
    with _Watchdog(deadline, "render bench") as dog, Engine(device=device) as engine:
        dog.beat()
        figures = bench(engine, programs, _parse_sizes(sizes), frames, before_program=dog.beat)
    if json_out:
        emit_json(figures)
        return
    typer.echo(f"{figures['programs']} programs, {frames} frames each, on {figures['renderer']}")
    for name, entry in figures["sizes"].items():
        typer.echo(f"  {name:>9}  {entry['images_per_second'] or 0:>10,.1f} images/s")
    for key, why in figures["skipped"].items():
        warn(f"skipped {key}: {why}")


main = entry_point(app, "render")

if __name__ == "__main__":
    sys.exit(main())
