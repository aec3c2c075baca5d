"""Licence detection on hostile text: bounded time and no recursion, whatever a comment holds.

One record's comment (or a dump's licence field) must never stop an import: a repeated
``SPDX-License-Identifier:`` once recursed per repetition, and long runs of licence words made
the scan quadratic. Every shape here is 200 KB and must take a fraction of a second.
"""

from __future__ import annotations

import time

import pytest

from corpus.licences import (
    NOASSERTION,
    detect_in_code,
    detect_in_licence_file,
    licence_class,
    normalise_spdx,
    verdict_from_field,
)

SIZE = 200_000
#: Linear work on 200 KB takes at most about 0.15 s of CPU here (Python's regular expressions
#: step through a long run of blanks a few times); the quadratic shapes took seconds to minutes.
SECONDS = 0.25

#: Units repeated to 200 KB: licence words that each rule keys on, with and without separators.
UNITS = {
    "spdx-prefix": "SPDX-License-Identifier: ",
    "spdx-lines": "SPDX-License-Identifier: MIT\n",
    "spdx-nested": "SPDX-License-Identifier: ((",
    "gnu-name": "GNU General Public License ",
    "gpl-short": "GPL ",
    "gpl-version": "GPLv3 ",
    "licence-word": "license ",
    "licence-colon": "License: ",
    "licence-under": "licensed under the ",
    "mit-word": "MIT ",
    "mit-lines": "MIT\n",
    "mit-licence": "MIT License ",
    "cc-short": "CC BY ",
    "cc-long": "Creative Commons Attribution ",
    "attribution": "attribution ",
    "public-domain": "public domain ",
    "all-rights": "All rights reserved. ",
    "bsd": "BSD ",
    "bsd-text": "Redistribution and use in source and binary forms ",
    "mit-grant": "Permission is hereby granted, free of charge ",
    "apache": "Apache License ",
    "mozilla": "Mozilla Public License ",
    "noncommercial": "not for commercial use ",
    "prohibition": "you may not distribute ",
    "osi-url": "https://opensource.org/licenses/",
    "artistic": "Artistic License ",
}
#: One word followed by 200 KB of one kind of blank: a run that two adjacent quantifiers split
#: every possible way is quadratic.
RUNS = {
    "licence-spaces": ("license", " "),
    "licence-colon-spaces": ("License:", " "),
    "apache-spaces": ("Apache License", " "),
    "mozilla-spaces": ("Mozilla Public License", " "),
    "cc-spaces": ("Creative Commons", " "),
    "cc-short-spaces": ("CC BY", " "),
    "bsd-dashes": ("BSD", "-"),
    "gnu-spaces": ("GNU", " "),
    "attribution-spaces": ("Creative Commons Attribution", " "),
    "mit-spaces": ("MIT", " "),
    "artistic-spaces": ("Artistic License", " "),
    "osi-url-chars": ("opensource.org/licenses/", "a"),
}


def _texts() -> list[tuple[str, str]]:
    texts = [(name, (unit * (SIZE // len(unit) + 1))[:SIZE]) for name, unit in UNITS.items()]
    texts += [(name, word + blank * SIZE) for name, (word, blank) in RUNS.items()]
    return texts


WAYS = {
    "line-comment": lambda text: detect_in_code(["// " + text.replace("\n", "\n// ")]),
    "block-comment": lambda text: detect_in_code(["/* " + text + " */\nvoid main() {}"]),
    "dump-field": verdict_from_field,
    "licence-file": detect_in_licence_file,
}


def _timed(call, text: str) -> float:
    # CPU time of this process: other work on a shared test machine does not count against it
    start = time.process_time()
    call(text)
    return time.process_time() - start


@pytest.mark.parametrize("way", list(WAYS))
@pytest.mark.parametrize(("shape", "text"), _texts(), ids=[name for name, _ in _texts()])
def test_hostile_text_of_200_kb_is_scanned_in_linear_time(shape: str, text: str, way: str) -> None:
    call = WAYS[way]
    # a slow machine gets a second try before a shape counts as slow
    took = min(_timed(call, text), _timed(call, text))
    assert took < SECONDS, f"{shape} via {way}: {took:.2f} s for {len(text):,} characters"


def test_repeated_spdx_prefix_in_a_10_kb_comment_states_nothing() -> None:
    comment = "// " + "SPDX-License-Identifier: " * 400
    assert detect_in_code([comment + "\nvoid main() {}"]) == []
    assert verdict_from_field("SPDX-License-Identifier: " * 400) is None


def test_a_field_that_is_an_spdx_line_names_its_licence() -> None:
    assert normalise_spdx("SPDX-License-Identifier: MIT") == "MIT"
    assert normalise_spdx("SPDX-License-Identifier: SPDX-License-Identifier: Apache-2.0") == "Apache-2.0"


def test_deeply_nested_expression_is_unknown_not_a_crash() -> None:
    nested = "(" * 5000 + "MIT" + ")" * 5000
    assert licence_class(nested) == "unknown"
    assert normalise_spdx(nested) in (NOASSERTION, "MIT")


def test_gpl_named_many_times_is_one_licence() -> None:
    verdicts = detect_in_code(["// " + "GNU General Public License " * 4000])
    assert [v.spdx for v in verdicts] == ["GPL-1.0-or-later"]
