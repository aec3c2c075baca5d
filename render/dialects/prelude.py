"""Where declarations of ours go in a complete fragment shader, without moving the user's lines.

The loop guard (:mod:`render.dialects.loopguard`) and the upside-down image pass
(:mod:`render.dialects.flip`) each need a few lines of their own before any of the shader's code:
an ``#extension`` request, declarations, helper functions, a macro. They go right after the
shader's leading ``#version`` and ``#extension`` lines, because desktop GLSL (Mesa) refuses an
``#extension`` directive once any code has been seen, and before anything else, so that the
shader's code sees them. A ``#line`` directive after them gives the next line the number it had,
so the driver's log still numbers lines as the user's file does.
"""

from __future__ import annotations

import re

from render.dialects.tokens import iter_tokens

_DIRECTIVE_NAME = re.compile(r"#\s*(\w*)")
_LINE = re.compile(r"#\s*line\s+(\d+)")
_OPENS = ("if", "ifdef", "ifndef")


def prelude_position(fragment: str) -> tuple[int, int]:
    """(offset, line number) where :func:`insert_prelude` puts lines: the start of the line after
    the last ``#version``/``#extension`` directive that precedes the first code token (after the
    ``#endif`` closing it when it sits in a conditional), and the number that line has for the
    compiler (as earlier ``#line`` directives set it)."""
    position, depth, pending = 0, 0, False
    last_line: tuple[int, int] | None = None  # (number it sets, offset of the line after it)
    for token in iter_tokens(fragment):  # only the directives before the first code token
        if token.kind != "directive":
            break
        name = _DIRECTIVE_NAME.match(token.text).group(1)
        if name in _OPENS:
            depth += 1
        elif name == "endif":
            depth = max(0, depth - 1)
        elif name == "line" and (m := _LINE.match(token.text)):
            last_line = (int(m.group(1)), _line_after(fragment, token.end))
        pending = pending or name in ("version", "extension")
        if pending and depth == 0:
            position, pending = _line_after(fragment, token.end), False
    if last_line is not None and last_line[1] <= position:
        number, start = last_line
        return position, number + fragment.count("\n", start, position)
    return position, fragment.count("\n", 0, position) + 1


def _line_after(code: str, offset: int) -> int:
    newline = code.find("\n", offset)
    return len(code) if newline < 0 else newline + 1


def insert_prelude(fragment: str, prelude: str) -> str:
    """``fragment`` with ``prelude`` (whole lines) at :func:`prelude_position`, followed by a
    ``#line`` directive that keeps the numbers of the lines after it."""
    position, number = prelude_position(fragment)
    head = fragment[:position]
    if head and not head.endswith("\n"):
        head += "\n"
    if not prelude.endswith("\n"):
        prelude += "\n"
    return f"{head}{prelude}#line {number}\n{fragment[position:]}"
