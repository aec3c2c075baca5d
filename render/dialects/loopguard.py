"""The loop guard: every loop of a shader bounded, so that untrusted code cannot hang a GPU.

A GPU driver on a headless context has no watchdog: a shader that never ends keeps the device
busy after the process that drew it has been killed (seen on an NVIDIA H200: everything after the
endless-loop example hung). Mesa's llvmpipe cannot hang that way, because it ends every shader's
loops after 65,535 iterations in total: one counter per invocation, shared by all loops, nested
or not, that each loop's back edge decrements (``LP_MAX_TGSI_LOOP_ITERATIONS``; measured: two
loops of 50,000 iterations in a row stop at 50,000 + 15,534). The guard gives any driver the same
bound, counted the same way, per pixel:

* one counter per invocation (``_ip_loops``, a global of the shader) that every loop's back edge
  increments (after the body, also after a ``continue``), and a check before every iteration;
* once the counter reaches :data:`LOOP_BUDGET`, a little under llvmpipe's cap so that on llvmpipe
  the guard trips first and can say so, every loop ends at its next check, and the pass sets a
  flag in a storage buffer (``_ip_loop_report``) that the engine reads
  (:meth:`render.engine.CompiledProgram.loop_guard_tripped`). A driver without storage buffers
  (GLSL 3.30 without ``GL_ARB_shader_storage_buffer_object``) still gets every loop bounded, but
  cannot report a trip (``report=False``).

Each loop is rewritten on its own lines (line numbers in the driver's log stay the user's), with
the code inside its parentheses kept as written::

    for (init; cond; next) body   →  for (init; _ip_loop_ok() && (cond); next, ++_ip_loops) body
    while (cond) body             →  for (; _ip_loop_ok() && (cond); ++_ip_loops) body
    do body while (cond);         →  do body while ((cond) && _ip_loop_next());

except a counted loop (:mod:`render.dialects.loopcount`: ``for (int i = 0; i < 16; i++)`` whose
body leaves ``i`` alone) that does a bounded amount of work, its inner loops included (at most
65,000 iterations, all counted loops, no call of a function that loops). Such a loop is left as
written, so that a compiler unrolls it as it would unguarded (a check in its condition stops
that, and with it the compile-time folding of ``sin(float(i) * k)`` that hash functions rely
on), and charged its count before it starts::

    for (int i = 0; i < 16; i++) body  →  { _ip_loop_charge(16); for (int i = 0; i < 16; i++) body }

Bounded in every case: a loop with a check stops once the budget is spent; a counted loop does at
most 65,000 iterations' work each time it starts, and it starts either from code outside any
loop or inside a loop with a check, which the count it charged stops soon. So a pixel does at
most about twice the budget, and a guarded program draws exactly what it draws unguarded until a
pixel's loops run 65,000 times (on llvmpipe, where its own cap would cut them too), as far as the
compiler makes the same code of it: a check in a loop's condition can change how it rounds
(measured on real programs: RESULTS.md).

Everything the compiler sees is rewritten: every pass, the Common code (part of each pass),
functions, and the bodies of ``#define`` directives, where a loop is rewritten in the macro itself
(``#define REPEAT(n) for (int i = 0; i < n; i++)``), so every expansion of it is guarded. The
zero-initialising loops :mod:`render.dialects.zeroinit` writes (``_ip_z…``) are bounded by a
literal and left as they are. A loop the scan cannot read for sure is never run unguarded: the
program is refused (:class:`UnguardableLoop`): a loop header whose parentheses or semicolons
differ between preprocessor branches or come from a macro, a ``do`` whose ``while`` is out of
sight (in another macro), a loop keyword without its parentheses. A loop made by token pasting
(``f##or``) is not seen; no real program does that. Scanning is linear in the size of the code
(:mod:`render.dialects.tokens`).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from render.dialects.loopcount import Knowns, constant_trip_count, knowns, static_work
from render.dialects.prelude import insert_prelude
from render.dialects.tokens import Token, matching, statement_end, tokenize

#: Loop iterations (back edges) one invocation of a pass may run, all loops together. llvmpipe
#: stops at 65,535; the guard trips a little earlier, so that on llvmpipe it is the one that stops.
LOOP_BUDGET = 65_000
#: The storage-buffer binding point of the trip flag.
REPORT_BINDING = 0
#: The storage block the guard declares when it reports trips.
REPORT_BLOCK = "_ip_loop_report"
#: The extension that gives GLSL 3.30 storage buffers (core in GL 4.3).
REPORT_EXTENSION = "GL_ARB_shader_storage_buffer_object"
#: What validation logs when the guard tripped (the status is ``timeout``).
TRIPPED_LOG = (
    f"loop guard tripped: a pixel ran more than {LOOP_BUDGET:,} loop iterations (all loops "
    "together), so its loops were cut short; on a GPU the program would have run that long or "
    "never ended (llvmpipe cuts loops at 65,535)"
)

_REPORTING = f"""\
#extension {REPORT_EXTENSION} : require
layout(std430) buffer {REPORT_BLOCK} {{ uint _ip_loop_tripped; }};
bool _ip_loop_trip() {{ _ip_loop_tripped = 1u; return false; }}
"""
_SILENT = "bool _ip_loop_trip() { return false; }\n"
_COUNTING = f"""\
int _ip_loops = 0;
bool _ip_loop_ok() {{ return _ip_loops < {LOOP_BUDGET} || _ip_loop_trip(); }}
bool _ip_loop_next() {{ return ++_ip_loops < {LOOP_BUDGET} || _ip_loop_trip(); }}
bool _ip_loop_charge(int n) {{ _ip_loops += n; return _ip_loops <= {LOOP_BUDGET} || _ip_loop_trip(); }}
"""
_DEFINE = re.compile(r"#\s*define\s+\w+(?:\([^)]*\))?")
_LOOP_WORDS = ("for", "while", "do")


class UnguardableLoop(ValueError):
    """A loop the guard cannot bound for sure: the program is not run with the guard on."""


class _Edit(NamedTuple):
    start: int
    end: int
    text: str


def guard_loops(fragment: str, *, report: bool = True) -> str:
    """``fragment`` (a complete shader) with every loop bounded as the module docstring says,
    and the guard's declarations put before its code; unchanged when it has no loop. Raises
    :class:`UnguardableLoop` for a loop it cannot bound for sure."""
    everything = tokenize(fragment)
    code = [t for t in everything if t.kind != "directive"]
    known = knowns(everything, code)
    edits = _loop_edits(code, fragment, known)
    for directive in everything:
        if directive.kind == "directive" and (m := _DEFINE.match(directive.text)):
            if any(word in directive.text for word in _LOOP_WORDS):
                body = directive.text[m.end() :]
                shift = directive.start + m.end()
                inner = [t._replace(start=t.start + shift, end=t.end + shift) for t in tokenize(body)]
                edits += _loop_edits(inner, fragment, known)
    if not edits:
        return fragment
    pieces, done = [], 0
    for start, end, text in sorted(edits):
        pieces += [fragment[done:start], text]
        done = end
    pieces.append(fragment[done:])
    return insert_prelude("".join(pieces), (_REPORTING if report else _SILENT) + _COUNTING)


def _loop_edits(tokens: list[Token], code: str, known: Knowns) -> list[_Edit]:
    """The edits that guard every loop among ``tokens`` (one statement list: the code, or one
    macro body)."""
    closing_whiles = set()
    for i, token in enumerate(tokens):
        if token.text == "do" and token.kind == "id":
            closing_whiles.add(_do_while(tokens, i, code))
    edits: list[_Edit] = []
    for i, token in enumerate(tokens):
        if token.kind != "id" or token.text not in ("for", "while"):
            continue
        open_, close = _header(tokens, i, code)
        if token.text == "while" and i in closing_whiles:
            edits += [
                _Edit(tokens[open_].end, tokens[open_].end, "("),
                _Edit(tokens[close].start, tokens[close].start, ") && _ip_loop_next()"),
            ]
        elif token.text == "while":
            _refuse_declaration(tokens[open_ + 1 : close], code)
            edits += [
                _Edit(token.start, token.end, "for"),
                _Edit(tokens[open_].end, tokens[open_].end, "; _ip_loop_ok() && ("),
                _Edit(tokens[close].start, tokens[close].start, "); ++_ip_loops"),
            ]
        else:
            edits += _for_edits(tokens, i, close, code, known)
    return edits


def _header(tokens: list[Token], i: int, code: str) -> tuple[int, int]:
    """The indices of the parentheses after the loop keyword at ``tokens[i]``."""
    if i + 1 >= len(tokens) or tokens[i + 1].text != "(":
        raise UnguardableLoop(f"`{tokens[i].text}` without its parentheses: {_excerpt(code, tokens[i])}")
    close = matching(tokens, i + 1)
    if close < 0:
        raise UnguardableLoop(f"`{tokens[i].text}` with unclosed parentheses: {_excerpt(code, tokens[i])}")
    return i + 1, close


def _for_edits(tokens: list[Token], i: int, close: int, code: str, known: Knowns) -> list[_Edit]:
    open_ = i + 1
    if open_ + 2 < close and tokens[open_ + 2].text.startswith("_ip_z"):  # zeroinit's own loop
        return []
    end = statement_end(tokens, i)
    count = constant_trip_count(tokens, open_, close, end, known) if end > close else None
    if count is not None and static_work(tokens, i, close, end, count, known) is not None:
        # it and the loops inside it do a bounded amount of work: charged before it, drawn as
        # written, so that a compiler unrolls it as it would unguarded
        after = tokens[end].end
        return [
            _Edit(tokens[i].start, tokens[i].start, f"{{ _ip_loop_charge({count}); "),
            _Edit(after, after, " }"),
        ]
    semicolons, depth = [], 0
    for j in range(open_ + 1, close):
        text = tokens[j].text
        if text in ("(", "[", "{"):
            depth += 1
        elif text in (")", "]", "}"):
            depth -= 1
        elif text == ";" and depth == 0:
            semicolons.append(j)
    if len(semicolons) != 2:
        raise UnguardableLoop(f"a `for` header the scan cannot read: {_excerpt(code, tokens[open_ - 1])}")
    first, second = semicolons
    condition = tokens[first + 1 : second]
    _refuse_declaration(condition, code)
    edits = []
    if condition:
        edits += [
            _Edit(tokens[first].end, tokens[first].end, " _ip_loop_ok() && ("),
            _Edit(tokens[second].start, tokens[second].start, ")"),
        ]
    else:
        edits.append(_Edit(tokens[first].end, tokens[first].end, " _ip_loop_ok()"))
    count = ", ++_ip_loops" if second + 1 < close else " ++_ip_loops"  # after the loop's own step
    edits.append(_Edit(tokens[close].start, tokens[close].start, count))
    return edits


def _refuse_declaration(condition: list[Token], code: str) -> None:
    """A condition that declares a variable (``while (bool b = f())``) cannot take a guard before it."""
    words = next((condition[:j] for j, t in enumerate(condition) if t.text == "="), [])
    if len(words) >= 2 and all(t.kind == "id" for t in words):
        raise UnguardableLoop(f"a loop condition that declares a variable: {_excerpt(code, condition[0])}")


def _do_while(tokens: list[Token], i: int, code: str) -> int:
    """The index of the ``while`` that closes the ``do`` at ``tokens[i]``."""
    end = statement_end(tokens, i + 1)
    after = end + 1
    if end < 0 or after >= len(tokens) or tokens[after].text != "while":
        raise UnguardableLoop(f"a `do` whose `while` the scan cannot find: {_excerpt(code, tokens[i])}")
    return after


def _excerpt(code: str, token: Token) -> str:
    line_start = code.rfind("\n", 0, token.start) + 1
    line_end = code.find("\n", token.start)
    line = code[line_start : line_end if line_end >= 0 else len(code)].strip()
    return f"`{line[:80]}`"
