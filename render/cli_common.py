"""What ``render``'s two command modules share (:mod:`render.cli`, :mod:`render.cli_pictures`)."""

from __future__ import annotations

from typing import Annotated

import typer

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


def catalogue_db():
    """:mod:`corpus.db`, imported when a command needs it (``--help`` stays fast)."""
    from corpus import db

    return db


def parse_sizes(text: str) -> tuple[tuple[int, int], ...]:
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
