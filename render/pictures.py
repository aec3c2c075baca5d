"""Looking at programs: PNG frames, videos, and a speed figure (contact sheets: :mod:`render.sheet`).

These are for people (and for ``render bench``), not for pretraining: they may use PIL and
allocate freely. They render in this process on the caller's :class:`Engine`.

Programs with feedback (Shadertoy buffers, twigl and GLSL Sandbox backbuffers) show at time ``t``
what a browser shows after running from 0 to ``t``: the frames in between are rendered too, at
``warmup_fps`` (capped, so that a late time stays affordable).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from corpus.errors import UsageProblem
from corpus.paths import make_folder, writable_file
from render.dialects import Plan
from render.engine import CompiledProgram, Engine, ShaderError, UnsupportedProgram
from render.program import RenderProgram

#: Frames per second at which feedback programs are stepped from one asked-for time to the next.
WARMUP_FPS = 30.0
#: At most this many in-between frames per asked-for time (a time of 600 s stays affordable).
MAX_WARMUP_FRAMES = 300

ProgramLike = RenderProgram | Mapping[str, Any]


def as_program(program: ProgramLike) -> RenderProgram:
    """A :class:`RenderProgram` from itself or from corpus's work item (``load_program``)."""
    return program if isinstance(program, RenderProgram) else RenderProgram.from_item(dict(program))


def as_item(program: ProgramLike) -> dict[str, Any]:
    """The work item a sandboxed worker takes (see :func:`corpus.validations.load_program`)."""
    return program.to_item() if isinstance(program, RenderProgram) else dict(program)


def has_feedback(plan: Plan) -> bool:
    """Whether a frame depends on the frames before it (buffers or backbuffers)."""
    return len(plan.passes) > 1 or plan.feedback_targets() > 0


class Stepper:
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


def check_size(size: tuple[int, int]) -> tuple[int, int]:
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
    size = check_size(size)
    out_dir = make_folder(out_dir, "--out")
    paths: list[Path] = []
    picture = np.empty((size[1], size[0], 4), np.uint8)
    with engine.compile(program, float_picture=False) as compiled:
        stepper = Stepper(compiled, size, warmup_fps, before_frame)
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
    size = check_size(size)
    out_path = Path(out_path)
    suffix = out_path.suffix.lower()
    if suffix not in (".mp4", ".gif"):
        raise UsageProblem(
            f"cannot write a video to {out_path.name!r}", hint="name the output *.mp4 or *.gif"
        )
    if seconds <= 0 or fps <= 0:
        raise UsageProblem("--seconds and --fps must be positive", hint="e.g. --seconds 4 --fps 30")
    if suffix == ".mp4" and (size[0] % 2 or size[1] % 2):  # yuv420p halves both sides
        even = f"{size[0] + size[0] % 2}x{size[1] + size[1] % 2}"
        raise UsageProblem(
            f"an MP4 (H.264) needs even sides, and {size[0]}x{size[1]} has an odd one",
            hint=f"give --size {even}, or write a .gif, which takes any size",
        )
    count = max(1, round(seconds * fps))
    writable_file(out_path, "--out")
    picture = np.empty((size[1], size[0], 3), np.uint8)
    with engine.compile(program, float_picture=False) as compiled:
        stepper = Stepper(compiled, size, warmup_fps=fps, before_frame=before_frame)
        times = (start + i / fps for i in range(count))
        if suffix == ".gif":
            _write_gif(stepper, times, picture, fps, out_path)
        else:
            _write_mp4(stepper, times, picture, fps, out_path)
    return out_path


def _write_gif(stepper: Stepper, times: Iterable[float], picture: np.ndarray, fps: float, path: Path) -> None:
    from PIL import Image

    images = []
    for t in times:
        stepper.render(t)
        stepper.compiled.read_into(picture)
        images.append(Image.fromarray(picture.copy()))
    images[0].save(
        path, save_all=True, append_images=images[1:], duration=round(1000.0 / fps), loop=0, optimize=False
    )


def _write_mp4(stepper: Stepper, times: Iterable[float], picture: np.ndarray, fps: float, path: Path) -> None:
    try:
        import imageio_ffmpeg
    except ImportError as exc:
        raise UsageProblem(
            "writing MP4 needs imageio-ffmpeg",
            hint="pip install 'imageprograms[render]', or name the output *.gif",
        ) from exc
    h, w = picture.shape[:2]
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (w, h),
        fps=fps,
        codec="libx264",
        pix_fmt_in="rgb24",
        pix_fmt_out="yuv420p",
        macro_block_size=2,  # sides are even (checked by video()): never resized
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
    sizes = [check_size(s) for s in sizes]
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
