"""The options that select programs, declared once for every command that takes them.

``corpus ls`` and ``corpus snapshot create``, and ``render validate/vet/sheet/bench``, select
programs with the same eight filters (``--source``, ``--dialect``, ``--licence``, ``--spdx``,
``--tag``, ``--author``, ``--search``, ``--code``; some also take ``--status``, ``--vetted`` and
``--renderer``). Their Typer declarations live here, and
:func:`program_filter` turns the values into a :class:`~corpus.filters.ProgramFilter`, refusing
(exit 2) any value that no program can have, with the values that exist: a typo in
``--source shadertoi`` is an error, not an empty result. Cheap to import: no database library.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

import typer

from corpus.errors import UsageProblem
from corpus.filters import LICENCE_CLASSES, VALIDATION_STATUSES, ProgramFilter
from corpus.records import DIALECTS
from corpus.sources import SOURCES

#: What ``--status`` takes: every validation status, and ``unvalidated`` for programs with none.
STATUS_NAMES = (*VALIDATION_STATUSES, "unvalidated")

Sources = Annotated[
    list[str],
    typer.Option("--source", help=f"Only this source (repeatable): {', '.join(SOURCES)}."),
]
Dialects = Annotated[
    list[str],
    typer.Option("--dialect", help="Only this dialect (repeatable): shadertoy, glslsandbox, glsl, twigl-…"),
]
Classes = Annotated[
    list[str],
    typer.Option("--licence", help=f"Only this licence class (repeatable): {', '.join(LICENCE_CLASSES)}."),
]
Spdx = Annotated[list[str], typer.Option("--spdx", help="Only this SPDX expression (repeatable), e.g. MIT.")]
Tags = Annotated[
    list[str], typer.Option("--tag", help="Only programs with this tag (repeatable: all must match).")
]
Authors = Annotated[list[str], typer.Option("--author", help="Only this author (repeatable).")]
Search = Annotated[str | None, typer.Option("--search", help="Text in the title or description.")]
Code = Annotated[
    str | None, typer.Option("--code", help="Text in the code (trigram index, >= 3 characters).")
]
Statuses = Annotated[
    list[str],
    typer.Option(
        "--status",
        help="Only programs whose validation ended so (repeatable): ok, compile_error, …, unvalidated.",
    ),
]
Vetted = Annotated[
    bool | None,
    typer.Option(
        "--vetted/--not-vetted", help="Only programs the stored vetting verdict accepts (or rejects)."
    ),
]
RendererFilter = Annotated[
    str | None,
    typer.Option("--renderer", help="Statuses from this renderer string (default: the newest validation)."),
]


def check_choices(values: Iterable[str] | None, known: Iterable[str], what: str) -> list[str]:
    """``values`` as a list, or a :class:`UsageProblem` naming the first unknown one and listing
    the known ones."""
    values, known = list(values or []), tuple(known)
    for value in values:
        if value not in known:
            raise UsageProblem(f"unknown {what} {value!r}", hint=f"use one of: {', '.join(known)}")
    return values


def program_filter(
    sources,
    dialects,
    classes,
    spdx,
    tags,
    authors,
    search,
    code,
    include_duplicates,
    statuses=None,
    vetted=None,
    renderer=None,
) -> ProgramFilter:
    """The :class:`ProgramFilter` of the filter options' values, in their declaration order."""
    return ProgramFilter(
        sources=check_choices(sources, SOURCES, "source"),
        dialects=check_choices(dialects, DIALECTS, "dialect"),
        licence_classes=check_choices(classes, LICENCE_CLASSES, "licence class"),
        spdx=list(spdx or []),
        tags=list(tags or []),
        authors=list(authors or []),
        text=search,
        code=code,
        include_duplicates=include_duplicates,
        statuses=check_choices(statuses, STATUS_NAMES, "status"),
        vetted=vetted,
        renderer=renderer,
    )
