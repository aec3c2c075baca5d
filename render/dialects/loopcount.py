"""Loops whose number of iterations their code fixes, as a compiler sees it: ``for (int i = 0; i <
16; i++)`` with a body that never changes ``i``.

The loop guard (:mod:`render.dialects.loopguard`) must not stop a compiler from unrolling such a
loop: unrolled, ``sin(float(i) * 12.9898)`` and the like are folded at compile time with the
compiler's exact arithmetic instead of the GPU's approximate one, and hash functions built on
them (``fract(sin(x) * 43758.5453)``) then give different pictures (measured: 4 of 476 real
programs differed by up to 99 levels of 255 with a check in every loop). So such a loop gets no
check of its own when the work it does, its inner loops included, is bounded
(:func:`static_work`). It must be sure: a loop taken for one that ends when it does not would run
unbounded. So the count is only read from headers of the form ``for (T i = A; i OP B && …;
STEP)`` (``T`` int or float, ``A`` and ``B`` literals, object-like macros defined once as a
literal, or global constants declared once with a literal, and ``A`` also ``min(iFrame, 0)``,
zero written so that compilers cannot unroll, for loops that count up; ``STEP`` ``i++``,
``i--``, ``i += C``, ``i -= C`` …), and the body must leave ``i`` alone: no assignment, increment
or decrement of it, no macro that names it, no call that could take it as an ``out`` argument,
no preprocessor directive inside.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from dataclasses import dataclass, field

from render.dialects.tokens import PRECISIONS, Token, matching, statement_end, tokenize

#: Loops of more iterations than this are guarded inside: once entered, a loop this counts runs
#: to its end, so this is also how far past the budget one can take a pixel.
MAX_COUNTED = 65_000
_COMPARISONS = ("<", "<=", ">", ">=", "!=")
_LOOP_WORDS = frozenset(("for", "while", "do"))
#: ``min(iFrame, 0)``: zero, written so that a compiler cannot unroll the loop it starts.
_ZERO_FRAMES = {("min", "(", "iFrame", ",", "0", ")"), ("min", "(", "0", ",", "iFrame", ")")}
_ASSIGNING = frozenset(("=", "+=", "-=", "*=", "/=", "%=", "<<=", ">>=", "&=", "|=", "^=", "++", "--"))
#: Built-in functions with an ``out`` parameter (GLSL 3.30-4.x).
_OUT_BUILTINS = frozenset(("modf", "frexp", "uaddCarry", "usubBorrow", "umulExtended", "imulExtended"))
_DEFINE = re.compile(r"#\s*define\s+(\w+)(\()?([^\n]*)")
_NUMBER = re.compile(r"(?:0[xX][0-9a-fA-F]+|\d+)|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?[fF]?")


@dataclass
class Knowns:
    """What the scan needs to know about a whole shader, gathered once."""

    values: dict[str, float | int] = field(default_factory=dict)  # literal macros and constants
    macros: dict[str, set[str]] = field(default_factory=dict)  # macro → the names its body uses
    expansions: dict[str, list[str]] = field(default_factory=dict)  # object-like macro → its tokens
    writers: set[str] = field(default_factory=set)  # functions with an out or inout parameter
    functions: set[str] = field(default_factory=set)  # every function the shader declares
    looping: set[str] = field(default_factory=set)  # functions that run a loop, or call one that does
    directives: list[int] = field(default_factory=list)  # offsets of preprocessor directives

    def may_loop(self, token: Token) -> bool:
        """Whether the name ``token`` may run a loop where it stands: a loop keyword, a call of a
        looping function, or a macro whose body names either, or names a macro that does (at
        any depth: a loop two macros away is still a loop)."""
        return self._names_a_loop(token.text, set())

    def _names_a_loop(self, name: str, seen: set[str]) -> bool:
        if name in _LOOP_WORDS or name in self.looping:
            return True
        uses = self.macros.get(name)
        if uses is None or name in seen:
            return False
        seen.add(name)
        return any(self._names_a_loop(used, seen) for used in uses)


def knowns(everything: list[Token], code: list[Token]) -> Knowns:
    """:class:`Knowns` of a shader from its tokens (``everything`` with directives, ``code``
    without)."""
    found = Knowns(directives=[t.start for t in everything if t.kind == "directive"])
    defined: dict[str, int] = {}
    literal: dict[str, float | int] = {}
    for t in everything:
        if t.kind == "directive" and (m := _DEFINE.match(t.text)):
            name, function_like, body = m.group(1), m.group(2), m.group(3).split("//")[0].strip()
            defined[name] = defined.get(name, 0) + 1
            found.macros.setdefault(name, set()).update(re.findall(r"[A-Za-z_]\w*", body))
            value = None if function_like else _literal(body.strip("()"))
            if value is not None:
                literal[name] = value
            if not function_like:
                found.expansions[name] = [x.text for x in tokenize(body)]
    found.values = {name: v for name, v in literal.items() if defined[name] == 1}
    found.expansions = {name: e for name, e in found.expansions.items() if defined[name] == 1}
    declared: dict[str, int] = {}
    depth, unbalanced = 0, False
    current: str | None = None  # the function whose body the scan is in
    calls: dict[str, set[str]] = {}  # function → the names its body calls or expands
    for i, t in enumerate(code):
        if current is not None and t.kind == "id":
            calls[current].update(found.macros.get(t.text, ()))
            if t.text in _LOOP_WORDS or (i + 1 < len(code) and code[i + 1].text == "("):
                calls[current].add(t.text)
        if t.text == "{":
            depth += 1
        elif t.text == "}":
            depth -= 1
            current = None if depth == 0 else current
        elif t.kind == "id" and i + 1 < len(code) and i > 0:
            after, before = code[i + 1].text, code[i - 1]
            if before.kind == "id" and before.text not in ("return", "else") and after in "=;,)[":
                declared[t.text] = declared.get(t.text, 0) + 1  # a variable or parameter
                constant = i > 1 and code[i - 2].text == "const" and depth == 0 and after == "="
                if constant and i + 3 < len(code) and code[i + 3].text == ";":
                    value = _literal(code[i + 2].text)
                    if value is not None and t.text not in defined:
                        found.values[t.text] = value
            elif depth == 0 and after == "(" and before.kind == "id":
                found.functions.add(t.text)
                close = matching(code, i + 1) if not unbalanced else -1
                if close < 0:  # parentheses that do not close: any function may write
                    unbalanced = True
                    found.writers.add(t.text)
                elif any(p.text in ("out", "inout") for p in code[i + 2 : close]):
                    found.writers.add(t.text)
                if close > 0 and close + 1 < len(code) and code[close + 1].text == "{":
                    current = t.text
                    calls.setdefault(current, set())
    if unbalanced:
        found.writers |= found.functions
    found.looping = _looping(calls)
    for name, count in declared.items():
        if count > 1 and name in found.values and name not in defined:
            del found.values[name]  # declared again somewhere (a local, a parameter): not sure
    return found


def _looping(calls: dict[str, set[str]]) -> set[str]:
    """The functions that run a loop or call one that does (GLSL has no recursion), found by
    walking the calls backwards from the functions that loop themselves."""
    callers: dict[str, set[str]] = {}
    for caller, names in calls.items():
        for name in names:
            callers.setdefault(name, set()).add(caller)
    looping = {f for f, names in calls.items() if names & _LOOP_WORDS}
    todo = list(looping)
    while todo:
        for caller in callers.get(todo.pop(), ()):
            if caller not in looping:
                looping.add(caller)
                todo.append(caller)
    return looping


def _literal(text: str) -> float | int | None:
    """The value of a GLSL number literal (``-`` allowed), or None for anything else."""
    negative = text.startswith("-")
    text = text[1:].strip() if negative else text
    if not _NUMBER.fullmatch(text):
        return None
    if re.fullmatch(r"0[xX][0-9a-fA-F]+", text):
        value: float | int = int(text, 16)
    elif re.fullmatch(r"0[0-7]+", text):
        value = int(text, 8)
    elif text.isdigit():
        value = int(text)
    else:
        value = float(text.rstrip("fF"))
    return -value if negative else value


def _value(tokens: list[Token], known: Knowns) -> float | int | None:
    texts = [t.text for t in tokens]
    if len(texts) == 2 and texts[0] == "-":
        value = _value(tokens[1:], known)
        return None if value is None else -value
    if len(texts) != 1:
        return None
    if tokens[0].kind == "num":
        return _literal(texts[0])
    return known.values.get(texts[0])


def constant_trip_count(tokens: list[Token], open_: int, close: int, end: int, known: Knowns) -> int | None:
    """How many times the ``for`` loop whose header spans ``tokens[open_..close]`` and whose
    body ends at ``tokens[end]`` iterates at most, or None when its code does not say for sure."""
    header = tokens[open_ + 1 : close]
    parts, current = [], []
    for t in header:
        if t.text == ";":
            parts.append(current)
            current = []
        else:
            current.append(t)
    parts.append(current)
    if len(parts) != 3:
        return None
    init, condition, step = parts
    while init and init[0].text in PRECISIONS:
        init = init[1:]
    if len(init) < 4 or init[0].text not in ("int", "float") or init[2].text != "=":
        return None
    kind, name = init[0].text, init[1].text
    start = _value(init[3:], known)
    if start is None and kind == "int" and _expanded(init[3:], known) in _ZERO_FRAMES:
        start = 0  # the engine's iFrame counts from 0: what min(iFrame, 0) is, and a lower bound
    condition, rest = _first_conjunct(condition)  # `i < 100 && d < FAR` ends at 100 at the latest
    if rest and not _leaves_alone(rest, name, known):
        return None
    if len(condition) < 3 or condition[0].text != name or condition[1].text not in _COMPARISONS:
        return None
    bound = _value(condition[2:], known)
    by = _step([t.text for t in step], step, name, known)
    if start is None or bound is None or by is None or by == 0:
        return None
    if start == 0 and _expanded(init[3:], known) in _ZERO_FRAMES and by < 0:
        return None  # a lower bound only: a count only for loops that go up
    count = _count(kind, condition[1].text, start, bound, by)
    if count is None or count > MAX_COUNTED or not _leaves_alone(tokens[close + 1 : end + 1], name, known):
        return None
    return count


def _first_conjunct(condition: list[Token]) -> tuple[list[Token], list[Token]]:
    """``a && b && c`` → (``a``, ``b && c``): the loop ends no later than ``a`` says."""
    depth = 0
    for t in condition:
        if t.text in ("(", "["):
            depth += 1
        elif t.text in (")", "]"):
            depth -= 1
        elif t.text in ("||", "?", ",") and depth == 0:
            return condition, []  # an `||` (or worse) at the top: no conjunct to rely on
    for j, t in enumerate(condition):
        if t.text in ("(", "["):
            depth += 1
        elif t.text in (")", "]"):
            depth -= 1
        elif t.text == "&&" and depth == 0:
            return condition[:j], condition[j + 1 :]
    return condition, []


def _expanded(tokens: list[Token], known: Knowns, depth: int = 0) -> tuple[str, ...]:
    """The texts of ``tokens`` with object-like macros expanded (a few levels deep)."""
    texts: list[str] = []
    for t in tokens:
        expansion = known.expansions.get(t.text) if depth < 4 else None
        if expansion is None:
            texts.append(t.text)
        else:
            texts += _expanded([Token("id", x, 0, 0) for x in expansion], known, depth + 1)
    return tuple(texts)


def _step(texts: list[str], step: list[Token], name: str, known: Knowns) -> float | int | None:
    if texts in ([name, "++"], ["++", name]):
        return 1
    if texts in ([name, "--"], ["--", name]):
        return -1
    if len(texts) >= 3 and texts[0] == name and texts[1] in ("+=", "-="):
        value = _value(step[2:], known)
        return None if value is None else (value if texts[1] == "+=" else -value)
    return None


def _count(kind: str, op: str, start: float, bound: float, by: float) -> int | None:
    """Iterations of ``for (i = start; i op bound; i += by)``, an upper bound for floats."""
    if kind == "int":
        if not all(isinstance(v, int) for v in (start, bound, by)):
            return None
        if op == "!=":
            return (bound - start) // by if (bound - start) % by == 0 and (bound - start) // by >= 0 else None
    elif op == "!=" or abs(by) < max(abs(start), abs(bound)) * 2.0**-16:  # float steps must progress
        return None
    if (op in ("<", "<=") and by < 0) or (op in (">", ">=") and by > 0):
        return None
    span = (bound - start) / by
    exact = kind == "int"
    n = math.ceil(span) if op in ("<", ">") else math.floor(span) + 1
    return max(0, n if exact else n + 1)


def _leaves_alone(body: list[Token], name: str, known: Knowns) -> bool:
    """Whether ``body`` can be read for sure not to change the variable ``name``."""
    if not body or name in known.macros:
        return False
    directives = known.directives
    if bisect_right(directives, body[-1].end) - bisect_right(directives, body[0].start) > 0:
        return False
    for j, t in enumerate(body):
        if t.kind != "id":
            continue
        if t.text in known.macros and name in known.macros[t.text]:
            return False
        if t.text != name:
            continue
        before = body[j - 1].text if j > 0 else ""
        after = body[j + 1].text if j + 1 < len(body) else ""
        if before == ".":  # a member of that name (cell.x), not the variable
            continue
        if after in _ASSIGNING or after == "." or before in ("++", "--"):
            return False
        if before in ("(", ",") and after in (")", ","):  # a whole argument: of which call?
            callee = _callee(body, j)
            if callee is None or callee in _OUT_BUILTINS or callee in known.writers or callee in known.macros:
                return False
    return True


def _callee(body: list[Token], j: int) -> str | None:
    """The name of the function (or constructor) whose argument list holds ``body[j]``, or None."""
    depth = 0
    for k in range(j - 1, -1, -1):
        text = body[k].text
        if text in (")", "]"):
            depth += 1
        elif text in ("(", "["):
            if depth == 0:
                if text != "(" or k == 0 or body[k - 1].kind != "id":
                    return None
                name = body[k - 1].text
                return None if name in ("if", "for", "while", "switch", "return") else name
            depth -= 1
    return None


def static_work(tokens: list[Token], i: int, close: int, end: int, count: int, known: Knowns) -> int | None:
    """Iterations of the counted ``for`` loop at ``tokens[i]`` (``count`` of them, header closing
    at ``close``, body ending at ``end``) and of every loop inside it, all together, at most;
    None where that is not known from the code or more than :data:`MAX_COUNTED`. Loops inside
    must be counted loops themselves; a call of a function that loops makes it unknown."""
    inner = 0
    j = close + 1
    while j <= end:
        t = tokens[j]
        if t.kind == "id" and t.text == "for" and j + 1 < end and tokens[j + 1].text == "(":
            child_close = matching(tokens, j + 1)
            child_end = statement_end(tokens, j)
            if child_close < 0 or child_end < 0 or child_end > end:
                return None
            child = constant_trip_count(tokens, j + 1, child_close, child_end, known)
            work = None if child is None else static_work(tokens, j, child_close, child_end, child, known)
            if work is None:
                return None
            inner += work
            j = child_end + 1
            continue
        if t.kind == "id" and known.may_loop(t):
            return None
        j += 1
    total = count * (1 + inner)
    return total if total <= MAX_COUNTED else None
