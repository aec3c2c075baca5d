"""``render frames``, ``video``, ``sheet`` and ``bench``: the commands that draw programs for a
person to look at, or time them (the catalogue-side commands are in :mod:`render.cli`)."""

from __future__ import annotations

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
from corpus.cliutils import DbOption, JsonOption, emit_json, progress, warn
from corpus.errors import ExitCode
from render.cli_common import SandboxWorkers, catalogue_db, parse_sizes


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

    sizes = parse_sizes(text)
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

    return RenderProgram.from_item(load_program(catalogue_db().open_catalogue(db), program))


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

    catalogue = catalogue_db().open_catalogue(db)
    rows = list(list_programs(catalogue, flt, limit=limit or None))
    if not rows:
        raise NotFoundError("no program matches these filters", hint=hint)
    return rows, catalogue


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
    out: Annotated[
        Path, typer.Option("--out", help="The PNG to write; its credits go beside it (NAME.credits.md).")
    ] = Path("sheet.png"),
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

    Its credits go beside it (sheet.png -> sheet.credits.md): every program's title, author,
    URL and licence, tile by tile. Keep them with the picture wherever it goes.

    Example: render sheet --not-vetted --random 1 --caption reason --limit 64 --out rejected.png
    """
    import random

    from corpus.attribution import credits_path, write_credits
    from corpus.errors import UsageProblem
    from corpus.paths import writable_file
    from corpus.validations import load_program, program_verdict
    from render.sheet import contact_sheet

    if caption not in ("status", "reason"):
        raise UsageProblem(f"unknown caption {caption!r}", hint="use --caption status or --caption reason")
    writable_file(credits_path(out), "--out")  # before the tiles render, as the picture's own path is
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
    credits = write_credits(report.path, rows)
    if json_out:
        emit_json({**report.to_json(), "credits": str(credits)})
        return
    failed = f"; {len(report.failed)} drew nothing ({', '.join(sorted(set(report.failed.values())))})"
    typer.echo(f"wrote {report.path}: {report.tiles} programs{failed if report.failed else ''}")
    typer.echo(f"wrote {credits}: their authors and licences, to keep with the picture")


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
        figures = bench(engine, programs, parse_sizes(sizes), frames, before_program=dog.beat)
    if json_out:
        emit_json(figures)
        return
    typer.echo(f"{figures['programs']} programs, {frames} frames each, on {figures['renderer']}")
    for name, entry in figures["sizes"].items():
        typer.echo(f"  {name:>9}  {entry['images_per_second'] or 0:>10,.1f} images/s")
    for key, why in figures["skipped"].items():
        warn(f"skipped {key}: {why}")


def add_picture_commands(app: typer.Typer) -> None:
    """Register this module's commands on ``render``'s app."""
    app.command("frames")(frames_command)
    app.command("video")(video_command)
    app.command("sheet")(sheet_command)
    app.command("bench")(bench_command)
