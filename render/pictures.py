"""Looking at programs: PNG frames, contact sheets of many programs, videos, and a speed figure.

These are for people (and for ``render bench``), not for pretraining: they may use PIL and
allocate freely. Frames and videos render in this process on the caller's :class:`Engine`; a
contact sheet renders each tile in the validation workers (:class:`render.validate.WorkerPool`)
under a deadline, because a sheet is made of programs nobody has looked at yet, and one hostile
shader must cost one placeholder tile, not the whole sheet.

Programs with feedback (Shadertoy buffers, twigl and GLSL Sandbox backbuffers) show at time ``t``
what a browser shows after running from 0 to ``t``: the frames in between are rendered too, at
``warmup_fps`` (capped, so that a late time stays affordable).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from corpus.errors import UsageProblem
from render.dialects import Plan, build_plan
from render.engine import CompiledProgram, Engine, ShaderError, UnsupportedProgram
from render.program import RenderProgram

#: Frames per second at which feedback programs are stepped from one asked-for time to the next.
WARMUP_FPS = 30.0
#: At most this many in-between frames per asked-for time (a time of 600 s stays affordable).
MAX_WARMUP_FRAMES = 300

ProgramLike = RenderProgram | Mapping[str, Any]


def as_program(program: ProgramLike) -> RenderProgram:
    """A :class:`RenderProgram` from itself or from corpus's work item (``load_program``)."""
    if isinstance(program, RenderProgram):
        return program
    from render.worker import program_from_item

    return program_from_item(dict(program))


def as_item(program: ProgramLike) -> dict[str, Any]:
    """The work item a render worker takes (see :func:`corpus.validations.load_program`)."""
    if not isinstance(program, RenderProgram):
        return dict(program)
    return {
        "program": program.key,
        "dialect": program.dialect,
        "code_sha256": program.code_sha256 or program.key,
        "passes": [
            {"name": p.name, "type": p.type, "code": p.code, "inputs": [dict(i) for i in p.inputs]}
            for p in program.passes
        ],
    }


def has_feedback(plan: Plan) -> bool:
    """Whether a frame depends on the frames before it (buffers or backbuffers)."""
    return len(plan.passes) > 1 or plan.feedback_targets() > 0


class _Stepper:
    """Renders a compiled program at increasing times, filling in feedback frames between them."""

    def __init__(
        self,
        compiled: CompiledProgram,
        size: tuple[int, int],
        warmup_fps: float = WARMUP_FPS,
        before_frame: Callable[[], None] = lambda: None,
    ) -> None:
        self.compiled = compiled
        self.size = size
        self.step = 1.0 / warmup_fps if warmup_fps > 0 and has_feedback(compiled.plan) else 0.0
        self.before_frame = before_frame
        self.last: float | None = None

    def render(self, t: float) -> None:
        if self.step:
            if self.last is not None and t < self.last:
                self.compiled.reset()  # going back in time: feedback starts again from 0
                self.last = None
            start = 0.0 if self.last is None else self.last + self.step
            # the frames a browser draws before t (up to half a step before it: float times)
            between = max(0, math.ceil((t - start) / self.step - 0.5))
            step = self.step if between <= MAX_WARMUP_FRAMES else (t - start) / MAX_WARMUP_FRAMES
            for k in range(min(between, MAX_WARMUP_FRAMES)):
                self.before_frame()
                self.compiled.render(start + k * step, self.size)
        self.before_frame()
        self.compiled.render(t, self.size)
        self.last = t


def _stem(key: str) -> str:
    return "".join(c if c.isalnum() or c in "-._" else "_" for c in key.replace(":", "-"))


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    w, h = int(size[0]), int(size[1])
    if not (1 <= w <= 8192 and 1 <= h <= 8192):
        raise UsageProblem(
            f"size {w}x{h} is out of range", hint="use 1 to 8192 pixels a side, e.g. --size 256"
        )
    return w, h


def frames(
    engine: Engine,
    program: ProgramLike,
    size: tuple[int, int],
    times: Sequence[float],
    out_dir: Path,
    *,
    warmup_fps: float = WARMUP_FPS,
    before_frame: Callable[[], None] = lambda: None,
) -> list[Path]:
    """Render ``program`` at each of ``times`` (seconds) and write one PNG per time into
    ``out_dir`` (``SOURCE-ID_000_t1.5s.png``); returns the paths in the order of ``times``.
    ``before_frame()`` is called before every frame drawn (a watchdog's heartbeat).

    Raises :class:`ShaderError` or :class:`UnsupportedProgram` when the program cannot be drawn.
    """
    from PIL import Image

    program = as_program(program)
    size = _check_size(size)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    picture = np.empty((size[1], size[0], 4), np.uint8)
    with engine.compile(program, float_picture=False) as compiled:
        stepper = _Stepper(compiled, size, warmup_fps, before_frame)
        for i, t in enumerate(times):
            stepper.render(float(t))
            compiled.read_into(picture)
            path = out_dir / f"{_stem(program.key)}_{i:03d}_t{float(t):g}s.png"
            Image.fromarray(picture[..., :3]).save(path)
            paths.append(path)
    return paths


def video(
    engine: Engine,
    program: ProgramLike,
    size: tuple[int, int],
    seconds: float,
    fps: float,
    out_path: Path,
    *,
    start: float = 0.0,
    before_frame: Callable[[], None] = lambda: None,
) -> Path:
    """Render ``seconds`` of ``program`` at ``fps`` into an MP4 (H.264 through imageio-ffmpeg) or
    a GIF (PIL), chosen by ``out_path``'s suffix. Frames are consecutive, so feedback programs
    play as on the site. A GIF drops a frame identical to the one before (PIL merges them).
    ``before_frame()`` is called before every frame drawn."""
    program = as_program(program)
    size = _check_size(size)
    out_path = Path(out_path)
    suffix = out_path.suffix.lower()
    if suffix not in (".mp4", ".gif"):
        raise UsageProblem(
            f"cannot write a video to {out_path.name!r}", hint="name the output *.mp4 or *.gif"
        )
    if seconds <= 0 or fps <= 0:
        raise UsageProblem("--seconds and --fps must be positive", hint="e.g. --seconds 4 --fps 30")
    count = max(1, round(seconds * fps))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    picture = np.empty((size[1], size[0], 3), np.uint8)
    with engine.compile(program, float_picture=False) as compiled:
        stepper = _Stepper(compiled, size, warmup_fps=fps, before_frame=before_frame)
        times = (start + i / fps for i in range(count))
        if suffix == ".gif":
            _write_gif(stepper, times, picture, fps, out_path)
        else:
            _write_mp4(stepper, times, picture, fps, out_path)
    return out_path


def _write_gif(
    stepper: _Stepper, times: Iterable[float], picture: np.ndarray, fps: float, path: Path
) -> None:
    from PIL import Image

    images = []
    for t in times:
        stepper.render(t)
        stepper.compiled.read_into(picture)
        images.append(Image.fromarray(picture.copy()))
    images[0].save(
        path, save_all=True, append_images=images[1:], duration=round(1000.0 / fps), loop=0, optimize=False
    )


def _write_mp4(
    stepper: _Stepper, times: Iterable[float], picture: np.ndarray, fps: float, path: Path
) -> None:
    try:
        import imageio_ffmpeg
    except ImportError as exc:
        raise UsageProblem(
            "writing MP4 needs imageio-ffmpeg",
            hint="pip install 'imageprograms[render]', or name the output *.gif",
        ) from exc
    h, w = picture.shape[:2]
    # H.264 in yuv420p wants even sides; macro_block_size=2 pads odd ones by resizing a pixel.
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (w, h),
        fps=fps,
        codec="libx264",
        pix_fmt_in="rgb24",
        pix_fmt_out="yuv420p",
        macro_block_size=2,
        ffmpeg_log_level="error",
        output_params=["-crf", "20"],
    )
    writer.send(None)  # start ffmpeg
    try:
        for t in times:
            stepper.render(t)
            stepper.compiled.read_into(picture)
            writer.send(picture)
    finally:
        writer.close()


# ---------------------------------------------------------------------------------------------
# Contact sheets


def render_item(
    engine: Engine,
    item: Mapping[str, Any],
    sizes: Sequence[tuple[int, int]],
    times: Sequence[float],
    phase: Callable[[str], None] = lambda name: None,
) -> dict[str, Any]:
    """One contact-sheet tile, rendered where it is safe to (a worker): the RGB bytes of
    ``sizes[0]`` at each time, or the status that says why there are none. ``phase(name)`` is
    called before the compile, the first frame and every later frame, as the validation workers
    expect, so that the parent can enforce its deadlines."""
    size = (int(sizes[0][0]), int(sizes[0][1]))
    result: dict[str, Any] = {
        "program": item["program"],
        "code_sha256": item.get("code_sha256"),
        "dialect": item.get("dialect"),
        "renderer": engine.renderer_string,
        "status": "ok",
        "log": None,
        "frames": [],
    }
    from render.worker import compile_or_status

    compiled = compile_or_status(engine, build_plan(as_program(item)), phase, float_picture=False)
    if isinstance(compiled, dict):
        return result | compiled
    names = iter(["first-frame"])
    picture = np.empty((size[1], size[0], 3), np.uint8)
    with compiled:
        stepper = _Stepper(compiled, size, before_frame=lambda: phase(next(names, "frame")))
        for t in times:
            stepper.render(float(t))
            result["frames"].append(compiled.read_into(picture).tobytes())
    return result


@dataclass
class SheetReport:
    """What a contact sheet shows: where it is, its tiles, and the programs that drew nothing."""

    path: Path
    tiles: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # SOURCE:ID → status
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "tiles": self.tiles, "failed": self.failed, "seconds": self.seconds}


def contact_sheet(
    engine: Engine | None,
    programs: Sequence[ProgramLike],
    size: tuple[int, int],
    times: Sequence[float] | float,
    columns: int,
    out_path: Path,
    *,
    statuses: Mapping[str, str] | None = None,
    deadline: float = 10.0,
    workers: int = 0,
    isolated: bool = True,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> SheetReport:
    """A PNG grid of ``programs``, ``columns`` tiles a row, each tile the program at ``times``
    (one frame, or a strip of frames side by side) above its ``SOURCE:ID`` and, when
    ``statuses`` knows it, its status. A program that does not draw (compile error, timeout,
    crash, unsupported) gets a placeholder that says why.

    With ``isolated`` (the default) tiles render in worker processes killed after ``deadline``
    seconds in any phase (compile, first frame, any later frame); ``engine`` may then be None.
    ``isolated=False`` renders on ``engine`` in this process: only for trusted programs.
    """
    from PIL import Image

    size = _check_size(size)
    times = [float(times)] if isinstance(times, (int, float)) else [float(t) for t in times]
    if not times:
        raise UsageProblem("a contact sheet needs at least one time", hint="e.g. --times 1.0")
    if columns < 1:
        raise UsageProblem("--columns must be at least 1")
    started = time.perf_counter()
    items: dict[str, dict[str, Any]] = {}
    for program in programs:  # one tile per program, in the order given
        item = as_item(program)
        items.setdefault(item["program"], item)
    if not items:
        raise UsageProblem("no programs to put on a contact sheet", hint="check the filters with `corpus ls`")
    results = _render_tiles(engine, list(items.values()), size, times, deadline, workers, isolated, progress)

    w, h = size
    font, line = _font(w * len(times))
    tile_w, label_h = w * len(times), 2 * line + 6
    gap = 4
    rows = -(-len(items) // columns)
    sheet = Image.new("RGB", (columns * (tile_w + gap) + gap, rows * (h + label_h + gap) + gap), (24, 24, 24))
    report = SheetReport(Path(out_path), tiles=len(items))
    for index, key in enumerate(items):
        result = results.get(key) or {"status": "crash", "log": "no result came back"}
        x = gap + (index % columns) * (tile_w + gap)
        y = gap + (index // columns) * (h + label_h + gap)
        if result["status"] == "ok" and len(result.get("frames") or []) == len(times):
            for i, raw in enumerate(result["frames"]):
                pixels = np.frombuffer(raw, np.uint8).reshape(h, w, 3)
                sheet.paste(Image.fromarray(pixels), (x + i * w, y))
        else:
            report.failed[key] = result["status"]
            sheet.paste(_placeholder(tile_w, h, result["status"], result.get("log"), font, line), (x, y))
        known = (statuses or {}).get(key)
        status = known if known else (result["status"] if result["status"] != "ok" else "")
        _label(sheet, (x, y + h + 2), tile_w, [key, status], font, line)
    report.path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(report.path)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _render_tiles(
    engine: Engine | None,
    items: list[dict[str, Any]],
    size: tuple[int, int],
    times: list[float],
    deadline: float,
    workers: int,
    isolated: bool,
    progress: Callable[[dict[str, Any]], None] | None,
) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}

    def done(result: dict[str, Any]) -> None:
        results[result["program"]] = result
        if progress is not None:
            progress(result)

    if not isolated:
        if engine is None:
            raise UsageProblem("rendering a sheet in this process needs an engine")
        for item in items:
            try:
                done(render_item(engine, item, [size], times))
            except UnsupportedProgram as exc:
                done({"program": item["program"], "status": "unsupported", "log": exc.message})
        return results

    from render.validate import ValidateOptions, WorkerPool

    options = ValidateOptions(
        workers=min(workers or ValidateOptions().worker_count(), len(items)),
        compile_deadline=deadline,
        frame_deadline=deadline,
        sizes=(size,),
        times=tuple(times),
        device=None,
    )
    with WorkerPool(options, task="frames") as pool:
        for result in pool.run(items):
            done(result)
    return results


def _font(width: int):
    from PIL import ImageFont

    px = max(9, min(14, width // 10))
    try:
        return ImageFont.load_default(size=px), px + 2
    except (TypeError, ValueError, OSError, ImportError):  # Pillow without FreeType: a fixed bitmap font
        return ImageFont.load_default(), 11


def _fit(text: str, width: int, font) -> str:
    """``text`` cut (with an ellipsis) to ``width`` pixels, keeping its end: ids differ at the end."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength("…" + text) > width:
        text = text[1:]
    return "…" + text


def _label(sheet, at: tuple[int, int], width: int, lines: list[str], font, line: int) -> None:
    from PIL import ImageDraw

    draw = ImageDraw.Draw(sheet)
    for i, text in enumerate(lines):
        if text:
            draw.text((at[0], at[1] + i * line), _fit(text, width, font), fill=(230, 230, 230), font=font)


def _placeholder(w: int, h: int, status: str, log: str | None, font, line: int):
    """A dark tile that says why there is no picture: the status and the start of the log."""
    from PIL import Image, ImageDraw

    tile = Image.new("RGB", (w, h), (70, 24, 24) if status in ("timeout", "crash") else (56, 40, 24))
    draw = ImageDraw.Draw(tile)
    draw.text((4, 4), _fit(status.replace("_", " "), w - 8, font), fill=(255, 200, 160), font=font)
    words = " ".join((log or "").split()).split(" ")
    y, current = 4 + line + 2, ""
    for word in words:
        candidate = f"{current} {word}".strip()
        if font.getlength(candidate) <= w - 8:
            current = candidate
            continue
        if current:
            draw.text((4, y), current, fill=(220, 220, 220), font=font)
            y += line
        current = _fit(word, w - 8, font)
        if y + line > h - 4:
            return tile
    if current and y + line <= h - 4:
        draw.text((4, y), current, fill=(220, 220, 220), font=font)
    return tile


# ---------------------------------------------------------------------------------------------
# Speed


def bench(
    engine: Engine,
    programs: Sequence[ProgramLike],
    sizes: Sequence[tuple[int, int]],
    frames: int,
    *,
    time_step: float = 1.0 / 60.0,
    before_program: Callable[[str], None] = lambda key: None,
) -> dict[str, Any]:
    """Images per second of the batch path (compile once, then ``render`` + ``read_into`` a
    preallocated uint8 buffer, as pretraining does), per size, over ``programs``.

    Compiling and the first frame at each size (llvmpipe's JIT) are not timed; programs that do
    not compile are skipped and listed. Runs in this process: bench programs that validated ok.
    """
    if frames < 1:
        raise UsageProblem("--frames must be at least 1")
    sizes = [_check_size(s) for s in sizes]
    seconds = {s: 0.0 for s in sizes}
    skipped: dict[str, str] = {}
    measured = 0
    buffers = {s: np.empty((s[1], s[0], 4), np.uint8) for s in sizes}
    for program in programs:
        program = as_program(program)
        before_program(program.key)
        try:
            compiled = engine.compile(program, float_picture=False)
        except (ShaderError, UnsupportedProgram) as exc:
            skipped[program.key] = getattr(exc, "status", "unsupported")
            continue
        with compiled:
            for s in sizes:
                out = buffers[s]
                compiled.render(0.0, s)  # JIT and target allocation, untimed
                compiled.read_into(out)
                started = time.perf_counter()
                for i in range(frames):
                    compiled.render(1.0 + i * time_step, s)
                    compiled.read_into(out)
                seconds[s] += time.perf_counter() - started
        measured += 1
    return {
        "renderer": engine.renderer_string,
        "programs": measured,
        "frames_per_program": frames,
        "skipped": skipped,
        "sizes": {
            f"{w}x{h}": {
                "images": measured * frames,
                "seconds": round(seconds[(w, h)], 4),
                "images_per_second": round(measured * frames / seconds[(w, h)], 2)
                if seconds[(w, h)]
                else None,
            }
            for w, h in sizes
        },
    }
