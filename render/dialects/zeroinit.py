"""Zero-initialise local variables declared without an initialiser, as WebGL does.

Browsers compile WebGL shaders through a translator (ANGLE) that gives every local variable
declared without an initialiser the value zero, arrays and structs included; desktop drivers leave
it undefined, and Mesa's undefined values come out as garbage or NaN: a program that accumulates
into ``float d;`` or fills some of ``vec3 pts[8];`` draws a blank or NaN picture here and a fine
one in a browser. So each such declaration inside a function gets the zero value: an initialiser
for scalars, vectors, matrices and structs of those (``vec3 c = vec3(0);``), statements right after
the declaration for arrays and structs holding arrays (a loop over ``a.length()``, so any constant
size works). Edits stay on the declaration's line, so the driver's line numbers stay the user's.

Declarations the scan cannot see or read for sure are left as they are: made by a macro, naming a
macro (it may expand to more declarators), of a struct declared twice or with preprocessor
directives among its members, or in blocks that open and close in different preprocessor branches.
"""

from __future__ import annotations

from render.dialects.tokens import (
    MATRIX_TYPES,
    PRECISIONS,
    VALUE_TYPES,
    Token,
    balanced,
    defined_macros,
    matching,
    tokenize,
)

#: Array sizes as written: the literal number, or None for a constant expression.
Sizes = tuple[str | None, ...]
#: Each struct's members: struct name → [(member name, type, array sizes)].
Members = dict[str, list[tuple[str, str, Sizes]]]


def zero_initialise_locals(code: str) -> str:
    """``code`` with every local declaration that has no initialiser given the value zero."""
    everything = tokenize(code)
    tokens = [t for t in everything if t.kind != "directive"]
    if not balanced(tokens):
        return code
    macros = defined_macros(everything)
    directives = [t.start for t in everything if t.kind == "directive"]
    structs = _struct_members(tokens, directives)
    types = (VALUE_TYPES | set(structs)) - macros
    edits: list[tuple[int, str]] = []
    blocks: list[str] = []  # for each open brace: "body" (of a function), "struct" or "other"
    at_start = False
    i = 0
    while i < len(tokens):
        text = tokens[i].text
        if text == "{":
            before = [t.text for t in tokens[max(0, i - 2) : i]]
            if "struct" in before:
                blocks.append("struct")
            elif (blocks and blocks[-1] == "body") or (not blocks and before[-1:] == [")"]):
                blocks.append("body")
            else:  # an interface block at global scope
                blocks.append("other")
            at_start = True
        elif text == "}":
            if not blocks:  # preprocessor branches we cannot see through
                return code
            blocks.pop()
            at_start = True
        elif text == ";":
            at_start = True
        elif text in ("(", "["):
            close = matching(tokens, i)
            i, at_start = (close if close > 0 else i), False
        elif at_start and blocks and blocks[-1] == "body":
            at_start = False
            declaration = _declaration(tokens, i, types)
            if declaration is not None and not macros.intersection(d[0] for d in declaration[2]):
                end, type_name, declarators = declaration
                edits += _zero_edits(tokens, end, type_name, declarators, structs)
                i, at_start = end, True
        else:
            at_start = False
        i += 1
    # one join, not a copy of the whole code per edit (quadratic in a program of many declarations)
    pieces: list[str] = []
    done = 0
    for offset, text in sorted(edits):
        pieces += (code[done:offset], text)
        done = offset
    pieces.append(code[done:])
    return "".join(pieces)


def _struct_members(tokens: list[Token], directives: list[int]) -> Members:
    """Each struct's members; a struct this cannot read for sure is left out (never zeroed): one
    declared more than once (in preprocessor branches) or with directives among its members."""
    structs: Members = {}
    declared: dict[str, int] = {}
    for i in range(len(tokens) - 2):
        if tokens[i].text != "struct" or tokens[i + 1].kind != "id" or tokens[i + 2].text != "{":
            continue
        name = tokens[i + 1].text
        declared[name] = declared.get(name, 0) + 1
        close = matching(tokens, i + 2)
        if close < 0 or any(tokens[i + 2].start < d < tokens[close].end for d in directives):
            continue
        members = _members(tokens[i + 3 : close])
        if members is not None:
            structs[name] = members
    return {name: members for name, members in structs.items() if declared[name] == 1}


def _members(body: list[Token]) -> list[tuple[str, str, Sizes]] | None:
    members: list[tuple[str, str, Sizes]] = []
    j = 0
    while j < len(body):
        while j < len(body) and body[j].text in PRECISIONS:
            j += 1
        if j >= len(body) or body[j].kind != "id":
            return None
        type_name, j = body[j].text, j + 1
        while j < len(body) and body[j].text != ";":
            if body[j].kind != "id":
                return None
            name, j = body[j].text, j + 1
            sizes, j = _sizes(body, j)
            if j < 0:
                return None
            members.append((name, type_name, sizes))
            if j < len(body) and body[j].text == ",":
                j += 1
        j += 1
    return members


def _sizes(tokens: list[Token], j: int) -> tuple[Sizes, int]:
    """The array sizes written at ``tokens[j]`` (``[4][N]``: ("4", None)) and the index after
    them; -1 for brackets that do not close."""
    sizes: list[str | None] = []
    while j < len(tokens) and tokens[j].text == "[":
        close = matching(tokens, j)
        if close < 0:
            return (), -1
        inside = tokens[j + 1 : close]
        literal = len(inside) == 1 and inside[0].kind == "num" and inside[0].text.isdigit()
        sizes.append(inside[0].text if literal else None)
        j = close + 1
    return tuple(sizes), j


def _declaration(
    tokens: list[Token], i: int, types: set[str]
) -> tuple[int, str, list[tuple[str, Sizes, bool, int]]] | None:
    """The declaration statement starting at ``tokens[i]``: (index of its ``;``, type, and for each
    declarator (name, array sizes, has an initialiser, offset just after it)), or None."""
    j = i
    while j < len(tokens) and tokens[j].text in PRECISIONS:
        j += 1
    if j >= len(tokens) or tokens[j].text not in types:
        return None  # an expression, a const (always initialised), a return …
    type_name = tokens[j].text
    type_sizes, j = _sizes(tokens, j + 1)  # ES 3.00's float[3] a;
    declarators = []
    while True:
        if j < 0 or j >= len(tokens) or tokens[j].kind != "id" or tokens[j].text in types:
            return None
        name = tokens[j].text
        sizes, j = _sizes(tokens, j + 1)
        if j < 0 or j >= len(tokens) or tokens[j].text not in ("=", ",", ";"):
            return None  # a prototype, a call, something else
        end = tokens[j - 1].end
        initialised = tokens[j].text == "="
        while j < len(tokens) and tokens[j].text not in (",", ";"):  # the initialiser
            if tokens[j].text in ("{", "}"):
                return None  # no end in sight: a `;` only in another preprocessor branch
            if tokens[j].text in ("(", "["):
                j = matching(tokens, j)
                if j < 0:
                    return None
            j += 1
        if j >= len(tokens):
            return None
        declarators.append((name, type_sizes + sizes, initialised, end))
        if tokens[j].text == ";":
            return j, type_name, declarators
        j += 1


def _zero_edits(
    tokens: list[Token],
    end: int,
    type_name: str,
    declarators: list[tuple[str, Sizes, bool, int]],
    structs: Members,
) -> list[tuple[int, str]]:
    edits: list[tuple[int, str]] = []
    after: list[str] = []
    for name, sizes, initialised, offset in declarators:
        if initialised or len(sizes) > 1:  # arrays of arrays: not in GLSL ES 3.00 nor 3.30
            continue
        value = zero_value(type_name, structs) if not sizes else None
        if value is not None:
            edits.append((offset, f" = {value}"))
        else:
            statements = _zero_statements(name, type_name, sizes, structs, 0)
            if statements:
                after.append(statements)
    if after:
        edits.append((tokens[end].end, " " + " ".join(after)))
    return edits


def zero_value(type_name: str, structs: Members, depth: int = 0) -> str | None:
    """An expression of ``type_name`` that is zero everywhere, or None where one needs statements
    (a struct holding an array)."""
    if type_name in VALUE_TYPES:
        return f"{type_name}(0.0)" if type_name in MATRIX_TYPES else f"{type_name}(0)"
    members = structs.get(type_name)
    if members is None or depth > 8 or any(sizes for _, _, sizes in members):
        return None
    values = [zero_value(t, structs, depth + 1) for _, t, _ in members]
    if any(v is None for v in values):
        return None
    return f"{type_name}({', '.join(values)})"


def _zero_statements(lvalue: str, type_name: str, sizes: Sizes, structs: Members, level: int) -> str:
    """Statements that set ``lvalue`` to zero, element by element and member by member."""
    if level > 8 or len(sizes) > 1:
        return ""
    if sizes:
        index = f"_ip_z{level}"
        inner = _zero_statements(f"{lvalue}[{index}]", type_name, (), structs, level + 1)
        if not inner:
            return ""
        # a literal size where there is one: a program may #define its own length()
        count = sizes[0] or f"{lvalue}.length()"
        return f"for (int {index} = 0; {index} < {count}; ++{index}) {{ {inner} }}"
    value = zero_value(type_name, structs)
    if value is not None:
        return f"{lvalue} = {value};"
    parts = [
        _zero_statements(f"{lvalue}.{member}", member_type, member_sizes, structs, level + 1)
        for member, member_type, member_sizes in structs.get(type_name, [])
    ]
    return " ".join(parts) if parts and all(parts) else ""
