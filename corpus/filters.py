"""What a listing or a snapshot selects, without SQL, so command lines can build it cheaply.

:mod:`corpus.filter_sql` turns a :class:`ProgramFilter` into SQL; the command lines only need the
dataclass and the names below, and importing them costs no database library at start-up.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: Licence classes, from least to most restrictive in spirit (see :mod:`corpus.licences`).
LICENCE_CLASSES = ("permissive", "copyleft", "noncommercial", "public-domain", "proprietary", "unknown")
#: The classes whose terms limit what may be done with a program or what is made from it (a
#: snapshot takes them only when allowed; credits and model cards warn of them). ``unknown``
#: includes code with no licence at all, which is all rights reserved.
LIMITED_USE_CLASSES = ("noncommercial", "copyleft", "proprietary", "unknown")

#: Statuses a validation can end in (DESIGN "validation"); filters also take ``unvalidated``.
VALIDATION_STATUSES = (
    "ok",
    "compile_error",
    "link_error",
    "timeout",
    "crash",
    "nan",
    "constant",
    "blank",
    "unsupported",
)

#: Orders ``corpus ls --sort`` knows; :data:`corpus.queries.SORTS` maps each to SQL.
SORT_NAMES = ("key", "created", "-created", "title", "author", "seen")


@dataclass
class ProgramFilter:
    """What ``corpus ls`` and snapshots select on. Empty lists mean "any"."""

    sources: list[str] = field(default_factory=list)
    dialects: list[str] = field(default_factory=list)
    licence_classes: list[str] = field(default_factory=list)
    spdx: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    authors: list[str] = field(default_factory=list)
    text: str | None = None
    code: str | None = None
    include_duplicates: bool = True
    include_excluded: bool = True
    #: only programs a takedown covers (``corpus ls --excluded``)
    only_excluded: bool = False
    #: validation statuses of the current code (``unvalidated`` for none), for ``renderer`` or the newest
    statuses: list[str] = field(default_factory=list)
    #: True: only programs a stored vetting verdict accepted; False: only those it did not
    vetted: bool | None = None
    renderer: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            k: v
            for k, v in asdict(self).items()
            if v is not None and v != [] and k[:8] != "include_" and (k != "only_excluded" or v)
        } | {
            "include_duplicates": self.include_duplicates,
            "include_excluded": self.include_excluded,
        }
