"""Contact sheets: many programs side by side in one PNG, each tile labelled with its name and status.

A sheet is made of programs nobody has looked at yet, and one hostile shader must cost one
placeholder tile, not the whole sheet: so each tile renders in a sandboxed worker
(:mod:`render.sandbox`, task :data:`TILE_TASK`) killed after a deadline in any phase.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from corpus.errors import UsageProblem
from corpus.paths import check_picture_file, save_picture, writable_file
from render.dialects import build_plan
from render.engine import Engine, UnsupportedProgram
from render.pictures import ProgramLike, Stepper, as_item, as_program, check_size
from render.profiling import compile_or_status
from render.sandbox import SandboxOptions, SandboxPool

#: The sandbox task that renders one tile (params: ``size``, ``times``).
TILE_TASK = "render.sheet:tile_task"
#: Lines a tile's caption may take under its SOURCE:ID.
CAPTION_LINES = 3


def render_tile(
    engine: Engine,
    item: Mapping[str, Any],
    size: tuple[int, int],
    times: Sequence[float],
    phase: Callable[[str], None] = lambda name: None,
) -> dict[str, Any]:
    """One contact-sheet tile: the RGB bytes of the program at ``size`` at each time, or the
    status that says why there are none. ``phase(name)`` is called before the compile, the first
    frame and every later frame, as the sandbox expects, so that it can enforce its deadlines."""
    size = (int(size[0]), int(size[1]))
    result: dict[str, Any] = {
        "program": item["program"],
        "code_sha256": item.get("code_sha256"),
        "dialect": item.get("dialect"),
        "renderer": engine.renderer_string,
        "status": "ok",
        "log": None,
        "frames": [],
    }
    compiled = compile_or_status(engine, build_plan(as_program(item)), phase, float_picture=False)
    if isinstance(compiled, dict):
        return result | compiled
    names = iter(["first-frame"])
    picture = np.empty((size[1], size[0], 3), np.uint8)
    with compiled:
        stepper = Stepper(compiled, size, before_frame=lambda: phase(next(names, "frame")))
        for t in times:
            stepper.render(float(t))
            result["frames"].append(compiled.read_into(picture).tobytes())
    return result


def tile_task(engine: Engine, item: dict[str, Any], params: dict[str, Any], phase) -> dict[str, Any]:
    """:func:`render_tile` as a sandbox task (params: ``size``, ``times``)."""
    return render_tile(engine, item, tuple(params["size"]), params["times"], phase)


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
    workers: int | None = None,
    isolated: bool = True,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> SheetReport:
    """A PNG grid of ``programs``, ``columns`` tiles a row, each tile the program at ``times``
    (one frame, or a strip of frames side by side) above its ``SOURCE:ID`` and, when
    ``statuses`` knows it, its caption (its status, or anything: lines split at newlines and
    wrapped to the tile's width, up to :data:`CAPTION_LINES`). A program that does not draw
    (compile error, timeout, crash, unsupported) gets a placeholder that says why.

    With ``isolated`` (the default) tiles render in worker processes killed after ``deadline``
    seconds in any phase (compile, first frame, any later frame); ``engine`` may then be None.
    ``isolated=False`` renders on ``engine`` in this process: only for trusted programs.
    """
    from PIL import Image

    size = check_size(size)
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
    check_picture_file(Path(out_path))  # before rendering: a wrong --out must not cost the tiles
    writable_file(out_path, "--out")
    results = _render_tiles(engine, list(items.values()), size, times, deadline, workers, isolated, progress)

    w, h = size
    font, line = _font(w * len(times))
    tile_w = w * len(times)
    captions = {}
    for key in items:
        result = results.setdefault(key, {"status": "crash", "log": "no result came back"})
        known = (statuses or {}).get(key)
        caption = known if known else (result["status"] if result["status"] != "ok" else "")
        captions[key] = _wrap(caption, tile_w, font, CAPTION_LINES)
    label_h = (1 + max(1, max((len(c) for c in captions.values()), default=1))) * line + 6
    gap = 4
    rows = -(-len(items) // columns)
    sheet = Image.new("RGB", (columns * (tile_w + gap) + gap, rows * (h + label_h + gap) + gap), (24, 24, 24))
    report = SheetReport(Path(out_path), tiles=len(items))
    for index, key in enumerate(items):
        result = results[key]
        x = gap + (index % columns) * (tile_w + gap)
        y = gap + (index // columns) * (h + label_h + gap)
        if result["status"] == "ok" and len(result.get("frames") or []) == len(times):
            for i, raw in enumerate(result["frames"]):
                pixels = np.frombuffer(raw, np.uint8).reshape(h, w, 3)
                sheet.paste(Image.fromarray(pixels), (x + i * w, y))
        else:
            report.failed[key] = result["status"]
            sheet.paste(_placeholder(tile_w, h, result["status"], result.get("log"), font, line), (x, y))
        _label(sheet, (x, y + h + 2), tile_w, [key, *captions.get(key, [])], font, line)
    save_picture(sheet, report.path)  # whole or not at all: a killed sheet leaves the old one
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _render_tiles(
    engine: Engine | None,
    items: list[dict[str, Any]],
    size: tuple[int, int],
    times: list[float],
    deadline: float,
    workers: int | None,
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
                done(render_tile(engine, item, size, times))
            except UnsupportedProgram as exc:
                done({"program": item["program"], "status": "unsupported", "log": exc.message})
        return results

    options = SandboxOptions(workers=workers, compile_deadline=deadline, frame_deadline=deadline)
    options.workers = min(options.worker_count(), len(items))
    with SandboxPool(options, TILE_TASK) as pool:
        for result in pool.run(items, {"size": size, "times": times}):
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


def _wrap(text: str, width: int, font, max_lines: int) -> list[str]:
    """``text`` in lines of at most ``width`` pixels (at its newlines and between words), at most
    ``max_lines`` of them; a word wider than a line is cut."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        current = ""
        for word in paragraph.split():
            candidate = f"{current} {word}".strip()
            if font.getlength(candidate) <= width:
                current = candidate
                continue
            if current:
                lines.append(current)
            current = _fit(word, width, font)
        if current:
            lines.append(current)
    return lines[:max_lines]


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
    y = 4 + line + 2
    for text in _wrap(" ".join((log or "").split()), w - 8, font, max(0, (h - 4 - y) // line)):
        draw.text((4, y), text, fill=(220, 220, 220), font=font)
        y += line
    return tile
