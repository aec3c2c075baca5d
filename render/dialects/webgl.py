"""What a browser gives a WebGL program that a desktop GLSL compiler does not.

The programs we render ran in browsers, compiled by WebGL's translator (ANGLE in Chrome and
Firefox); we compile them as desktop GLSL 3.30 on Mesa (:mod:`render.dialects.translate`). Where
the two differ in what a program may rely on, the difference is made up for here, for the dialects
that come from WebGL (Shadertoy, twigl, GLSL Sandbox, gl-transitions):

* ``GL_ES`` is defined by every WebGL compiler, and most GLSL Sandbox programs branch on it
  (``#ifdef GL_ES``, ``#if defined(GL_ES)``, ``#ifndef GL_ES``), some with an ``#else`` branch that
  never compiled in a browser. Desktop GLSL reserves macro names that start with ``GL_``, so the
  name is renamed in the program (:data:`GL_ES_MACRO`) and that is defined as the browser's is.
* Shadertoy's header defines ``HW_PERFORMANCE`` (1 on a desktop; 0 on phones): programs choose
  their anti-aliasing by it, and declare uniforms of their own under ``#ifndef HW_PERFORMANCE``
  (or ``#if __LINE__ < 17``) for other hosts. As the site declares every uniform itself, such a
  declaration under a preprocessor condition is one the site never compiled: it goes
  (:func:`drop_conditional_uniforms`), and ours are declared.
* GLSL ES 1.00 lets a program overload a built-in function (``float cross(float)``) and keeps the
  built-in visible; in desktop GLSL a program's function hides every built-in of its name, so the
  program's other ``cross(vec3, vec3)`` calls fail. Such functions are renamed (``_ip_cross``), with
  overloads of the new name that forward to the built-in (:func:`builtin_overloads`).
* WebGL zero-initialises local variables declared without an initialiser
  (:mod:`render.dialects.zeroinit`).
"""

from __future__ import annotations

import re
from itertools import product

from render.dialects.tokens import PRECISIONS, Token, code_tokens, matching
from render.dialects.zeroinit import zero_initialise_locals

#: The name ``GL_ES`` has in the program once renamed; defined as WebGL defines ``GL_ES``.
GL_ES_MACRO = "_ip_GL_ES"
#: What Shadertoy's header defines on a desktop browser.
SHADERTOY_DEFINES = "#define HW_PERFORMANCE 1\n"

_GL_ES = re.compile(r"\bGL_ES\b")
_CONDITIONAL = re.compile(r"^[ \t]*#[ \t]*(if|ifdef|ifndef|elif|else|endif)\b", re.M)
_UNIFORM = re.compile(r"\buniform\s+(?:(?:lowp|mediump|highp)\s+)?\w+\s+([\w\s,\[\]]+?)\s*;")


def webgl_defines(*, shadertoy: bool = False) -> str:
    """The macros a WebGL compiler (and Shadertoy's header) defines, for the header of a shader."""
    return f"#define {GL_ES_MACRO} 1\n" + (SHADERTOY_DEFINES if shadertoy else "")


def rename_gl_es(code: str) -> str:
    """``GL_ES`` → :data:`GL_ES_MACRO` wherever the program names it."""
    return _GL_ES.sub(GL_ES_MACRO, code) if "GL_ES" in code else code


def drop_conditional_uniforms(code: str, names: set[str]) -> str:
    """``code`` without its declarations of the uniforms ``names`` that lie between a
    preprocessor conditional and its ``#endif`` (blanked on their line: line numbers stay)."""
    if "uniform" not in code or not _CONDITIONAL.search(code):
        return code
    lines, depth = code.split("\n"), 0
    for n, line in enumerate(lines):
        directive = _CONDITIONAL.match(line)
        if directive:
            depth += {"if": 1, "ifdef": 1, "ifndef": 1, "endif": -1}.get(directive.group(1), 0)
            depth = max(depth, 0)
        elif depth and "uniform" in line:
            lines[n] = _UNIFORM.sub(lambda m: _blank_if_ours(m, names), line)
    return "\n".join(lines)


def _blank_if_ours(m: re.Match, names: set[str]) -> str:
    declared = [part.split("[")[0].strip() for part in m.group(1).split(",")]
    return "" if declared and all(name in names for name in declared) else m.group(0)


def as_in_a_browser(bodies: list[str], *, es1: bool, shadertoy: bool = False) -> tuple[list[str], str]:
    """The user's code (``bodies``: a Shadertoy pass and its Common code, or one whole shader,
    already through :func:`render.dialects.translate.desktop_body`) adapted as this module says,
    and the declarations to put before the first of them (macros, forwarding overloads)."""
    whole = "\n".join(bodies)
    overloads = overloaded_builtins(whole) if es1 else set()
    header = webgl_defines(shadertoy=shadertoy) + builtin_overloads(whole, overloads)
    adapted = [zero_initialise_locals(rename_functions(rename_gl_es(b), overloads)) for b in bodies]
    return adapted, header


# ---------------------------------------------------------------------------------------------
# Overloaded built-ins (GLSL ES 1.00)

_GEN = ("float", "vec2", "vec3", "vec4")


def _signatures() -> dict[str, list[tuple[str, tuple[str, ...]]]]:
    """GLSL ES 1.00's built-in functions a fragment shader may call: name → [(return type,
    parameter types)], ``T`` expanded over float and vec2-4 (texture lookups are helpers of ours)."""
    table: dict[str, list[tuple[str, tuple[str, ...]]]] = {}

    def add(names: str, ret: str, *params: str) -> None:
        for name in names.split():
            for t in _GEN:
                signature = (ret.replace("T", t), tuple(p.replace("T", t) for p in params))
                if signature not in table.setdefault(name, []):
                    table[name].append(signature)

    add(
        "radians degrees sin cos tan asin acos atan exp log exp2 log2 sqrt inversesqrt abs sign "
        "floor ceil fract normalize dFdx dFdy fwidth",
        "T",
        "T",
    )
    add("atan pow mod min max step reflect", "T", "T", "T")
    add("mod min max", "T", "T", "float")
    add("clamp", "T", "T", "float", "float")
    add("clamp mix smoothstep faceforward", "T", "T", "T", "T")
    add("mix", "T", "T", "T", "float")
    add("step", "T", "float", "T")
    add("smoothstep", "T", "float", "float", "T")
    add("refract", "T", "T", "T", "float")
    add("length", "float", "T")
    add("distance dot", "float", "T", "T")
    table["cross"] = [("vec3", ("vec3", "vec3"))]
    table["matrixCompMult"] = [(m, (m, m)) for m in ("mat2", "mat3", "mat4")]
    for name, n, prefix in product(
        ("lessThan", "lessThanEqual", "greaterThan", "greaterThanEqual", "equal", "notEqual"),
        (2, 3, 4),
        ("", "i", "b"),
    ):
        if prefix != "b" or name in ("equal", "notEqual"):
            table.setdefault(name, []).append((f"bvec{n}", (f"{prefix}vec{n}",) * 2))
    for n in (2, 3, 4):
        table.setdefault("any", []).append(("bool", (f"bvec{n}",)))
        table.setdefault("all", []).append(("bool", (f"bvec{n}",)))
        table.setdefault("not", []).append((f"bvec{n}", (f"bvec{n}",)))
    return table


#: GLSL ES 1.00's built-in functions (see :func:`_signatures`).
ES1_BUILTINS = _signatures()
_PARAMETER_WORDS = frozenset(("const", "in", "out", "inout")) | PRECISIONS


def declared_functions(code: str) -> dict[str, set[tuple[str, ...]]]:
    """The functions ``code`` declares or defines: name → the parameter types of each overload
    (array parameters end in ``[]``)."""
    tokens = code_tokens(code)
    found: dict[str, set[tuple[str, ...]]] = {}
    depth = 0
    for i, token in enumerate(tokens):
        if token.text == "{":
            depth += 1
        elif token.text == "}":
            depth -= 1
        elif (
            depth == 0
            and token.kind == "id"
            and i + 1 < len(tokens)
            and tokens[i + 1].text == "("
            and i > 0
            and tokens[i - 1].kind == "id"
            and tokens[i - 1].text not in ("return", "else")
        ):
            close = matching(tokens, i + 1)
            if close > 0:
                found.setdefault(token.text, set()).add(_parameter_types(tokens[i + 2 : close]))
    return found


def _parameter_types(inside: list[Token]) -> tuple[str, ...]:
    types: list[str] = []
    current: list[Token] = []
    for token in [*inside, None]:
        if token is None or token.text == ",":
            words = [t for t in current if t.text not in _PARAMETER_WORDS]
            if words and words[0].text != "void":
                types.append(words[0].text + ("[]" if any(t.text == "[" for t in words) else ""))
            current = []
        else:
            current.append(token)
    return tuple(types)


def overloaded_builtins(code: str) -> set[str]:
    """The GLSL ES 1.00 built-in function names that ``code`` declares functions of its own by."""
    return {name for name in declared_functions(code) if name in ES1_BUILTINS}


def builtin_overloads(code: str, names: set[str]) -> str:
    """Definitions of ``_ip_NAME`` for each built-in signature of each of ``names`` that the
    program does not define itself, forwarding to the built-in: put them before the program."""
    if not names:
        return ""
    declared = declared_functions(code)
    lines = []
    for name in sorted(names):
        for ret, params in ES1_BUILTINS[name]:
            if params in declared.get(name, ()):
                continue
            args = ", ".join(f"{t} a{k}" for k, t in enumerate(params))
            call = ", ".join(f"a{k}" for k in range(len(params)))
            lines.append(f"{ret} _ip_{name}({args}) {{ return {name}({call}); }}\n")
    return "".join(lines)


def rename_functions(code: str, names: set[str]) -> str:
    """Every use of each of ``names`` as a name (not a ``.member``) becomes ``_ip_NAME``."""
    if not names:
        return code
    pattern = re.compile(r"(?<![\w.])(" + "|".join(sorted(names)) + r")\b")
    return pattern.sub(r"_ip_\1", code)
