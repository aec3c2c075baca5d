"""Licence detection: which licence a program's code, repository, dump or site states.

One step over plain records (no database): :func:`decide` weighs every piece of evidence and
returns a :class:`LicenceDecision` whose ``chosen`` verdict the catalogue stores.

Precedence, strongest first:

1. the code itself: an ``SPDX-License-Identifier`` line (evidence ``spdx-line``), else the
   highest-scoring licence statement in a comment of any pass (``code-comment``); ties go to the
   first pass given, so callers pass the Image pass first (:func:`decide_for_record` does);
2. the LICENSE/COPYING file of the repository the program came from (``repo-licence-file``);
3. what a dump's own licence field claims (``dump-field``): evidence, not a verdict, so any
   licence stated in the code wins over it;
4. the site's default terms (``site-default``): Shadertoy's is CC-BY-NC-SA-3.0, GLSL Sandbox has
   none;
5. nothing: ``NOASSERTION`` / ``unknown`` (evidence ``none``), legally all rights reserved.

Only comments (``//`` and ``/* */``) are read, never code, so a variable called ``mit`` states
nothing. The detector is built for crawl volumes: a keyword check on the lower-cased code
rejects most programs (most carry no licence comment) before any comment is extracted, and
detailed patterns map straight to canonical SPDX ids. The ``license-expression`` package is used
by :func:`normalise_spdx`, for free-form fields and SPDX lines (its results are cached), and its
bundled licence database classes ids.

Identifiers outside the SPDX list: ``LicenseRef-public-domain`` (public-domain wording),
``LicenseRef-all-rights-reserved`` ("All rights reserved" with no grant), ``LicenseRef-noncommercial``
("not for commercial use" wording), and, for a licence named without its version,
``LicenseRef-BSD`` and ``LicenseRef-CC-BY[-NC][-SA|-ND]`` (scored lower; the class is still
known).

The class of an id comes from license-expression's bundled licence database (ScanCode's
LicenseDB, read on first use): :data:`CATEGORY_CLASSES` maps its categories to ours, and
:data:`CLASS_OVERRIDES` lists, each with its reason, where we differ (the CC BY-NC family is
``noncommercial``, CC BY-ND ``proprietary``, Artistic-2.0 ``permissive`` …) and our own ids.

The package, in the order a text goes through it: :mod:`~corpus.licences.comments` (the comments,
and a cheap check whether they may state a licence), :mod:`~corpus.licences.rules` (one pattern
per way of stating a licence), :mod:`~corpus.licences.ids` (canonical ids),
:mod:`~corpus.licences.scan` (scanning, and normalising a stated licence),
:mod:`~corpus.licences.spdx` (SPDX expressions), :mod:`~corpus.licences.classes`,
:mod:`~corpus.licences.verdicts` (what detection returns), :mod:`~corpus.licences.detect` (the
public detectors and :func:`decide`) and :mod:`~corpus.licences.scancode`.
"""

from corpus.filters import LICENCE_CLASSES  # defined there so the CLI imports it cheaply
from corpus.licences.classes import (
    CATEGORY_CLASSES,
    CLASS_OVERRIDES,
    ClassOverride,
    database_categories,
    licence_class,
)
from corpus.licences.detect import (
    decide,
    decide_for_record,
    detect_in_code,
    detect_in_licence_file,
    verdict_from_field,
)
from corpus.licences.scan import normalise_spdx
from corpus.licences.scancode import detect_with_scancode
from corpus.licences.verdicts import (
    ALL_RIGHTS_RESERVED,
    EVIDENCE_KINDS,
    NOASSERTION,
    NONCOMMERCIAL,
    PUBLIC_DOMAIN,
    SITE_DEFAULTS,
    LicenceDecision,
    LicenceVerdict,
)

__all__ = [
    "ALL_RIGHTS_RESERVED",
    "CATEGORY_CLASSES",
    "CLASS_OVERRIDES",
    "EVIDENCE_KINDS",
    "LICENCE_CLASSES",
    "NOASSERTION",
    "NONCOMMERCIAL",
    "PUBLIC_DOMAIN",
    "SITE_DEFAULTS",
    "ClassOverride",
    "LicenceDecision",
    "LicenceVerdict",
    "database_categories",
    "decide",
    "decide_for_record",
    "detect_in_code",
    "detect_in_licence_file",
    "detect_with_scancode",
    "licence_class",
    "normalise_spdx",
    "verdict_from_field",
]
