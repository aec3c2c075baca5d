"""Licence detection: wordings, URLs and SPDX lines in comments, precedence, classes, SPDX fields.

Every shader and licence header here is written for these tests.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from corpus.errors import ImageProgramsError
from corpus.licences import (
    EVIDENCE_KINDS,
    LICENCE_CLASSES,
    NOASSERTION,
    SITE_DEFAULTS,
    decide,
    decide_for_record,
    detect_in_code,
    detect_in_licence_file,
    detect_with_scancode,
    licence_class,
    normalise_spdx,
    verdict_from_field,
)
from corpus.licences.ids import ID_TABLE
from corpus.records import PassRecord, ProgramRecord

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "samples"
SHADERTOY = SITE_DEFAULTS["shadertoy"]

BODY = """float ring(vec2 p, float r) { return abs(length(p) - r) - 0.01; }

void mainImage(out vec4 fragColor, in vec2 fragCoord)
{
    vec2 uv = (2.0 * fragCoord - iResolution.xy) / iResolution.y;
    float limit = 0.5;
    float d = ring(uv, limit + 0.1 * sin(iTime));
    vec3 col = mix(vec3(0.1, 0.2, 0.3), vec3(1.0, 0.8, 0.4), smoothstep(0.02, 0.0, d));
    fragColor = vec4(col, 1.0);
}
"""


def line_comments(text: str) -> str:
    return "\n".join(f"// {line}".rstrip() for line in text.splitlines())


def block_comment(text: str) -> str:
    return "/*\n" + "\n".join(f" * {line}".rstrip() for line in text.splitlines()) + "\n */"


def shader(header: str, style: str = "line") -> str:
    comment = line_comments(header) if style == "line" else block_comment(header)
    return f"{comment}\n\n{BODY}"


# (case id, comment header, SPDX expected)
WORDINGS = [
    ("mit-name", "The MIT License\nCopyright (c) 2021 Ada Example", "MIT"),
    (
        "mit-grant",
        "Copyright 2022 Ada Example\nPermission is hereby granted, free of charge, to any person obtaining\n"
        "a copy of this shader, to deal in it without restriction, subject to the following conditions:\n"
        "the above copyright notice shall be included in all copies.",
        "MIT",
    ),
    ("mit-licensed-under", "Made by Ada, licensed under MIT.", "MIT"),
    ("mit-licence-colon", "Licence: MIT", "MIT"),
    ("mit-url", "see https://opensource.org/licenses/MIT for the terms", "MIT"),
    ("mit-licensed", "MIT-licensed, have fun", "MIT"),
    ("mit-bare-line", "Fancy rings by Ada\nMIT", "MIT"),
    (
        "mit-0",
        "Permission is hereby granted, free of charge, to any person obtaining a copy of this\n"
        "software, to deal in the Software without restriction, and to permit persons to whom the\n"
        "Software is furnished to do so.",
        "MIT-0",
    ),
    (
        "bsd-2-text",
        "Copyright (c) 2018 Ada Example\nRedistribution and use in source and binary forms, with or without\n"
        "modification, are permitted provided that the following conditions are met:\n"
        "1. Redistributions of source code must retain the above copyright notice.\n"
        "2. Redistributions in binary form must reproduce the above copyright notice.",
        "BSD-2-Clause",
    ),
    (
        "bsd-3-text",
        "Redistribution and use in source and binary forms, with or without modification,\n"
        "are permitted provided that the following conditions are met:\n"
        "1. Redistributions of source code must retain the above copyright notice.\n"
        "2. Redistributions in binary form must reproduce the above copyright notice.\n"
        "3. Neither the name of the copyright holder nor the names of its contributors may be\n"
        "used to endorse or promote products derived from this software.",
        "BSD-3-Clause",
    ),
    ("bsd-3-name", "BSD 3-Clause License", "BSD-3-Clause"),
    ("bsd-2-name", "distributed under the 2-clause BSD licence", "BSD-2-Clause"),
    ("bsd-url", "https://opensource.org/licenses/BSD-3-Clause", "BSD-3-Clause"),
    ("bsd-new", "New BSD", "BSD-3-Clause"),
    (
        "apache-notice",
        'Licensed under the Apache License, Version 2.0 (the "License");\n'
        "you may not use this file except in compliance with the License.",
        "Apache-2.0",
    ),
    ("apache-url", "terms: http://www.apache.org/licenses/LICENSE-2.0", "Apache-2.0"),
    ("apache-short", "Apache 2.0 licence", "Apache-2.0"),
    (
        "zlib-text",
        "This software is provided 'as-is', without any express or implied warranty.\n"
        "1. The origin of this software must not be misrepresented.\n"
        "2. Altered source versions must be plainly marked as such.",
        "Zlib",
    ),
    ("zlib-name", "zlib license, (c) Ada Example", "Zlib"),
    ("isc-name", "ISC License", "ISC"),
    (
        "isc-text",
        "Permission to use, copy, modify, and/or distribute this software for any purpose with or\n"
        "without fee is hereby granted, provided that the above copyright notice and this\n"
        "permission notice appear in all copies.",
        "ISC",
    ),
    (
        "0bsd-text",
        "Permission to use, copy, modify, and/or distribute this software for any purpose with or\n"
        "without fee is hereby granted.\nTHE SOFTWARE IS PROVIDED AS IS.",
        "0BSD",
    ),
    (
        "unlicense-text",
        "This is free and unencumbered software released into the public domain.\n"
        "Anyone is free to copy, modify, publish, use, compile, sell, or distribute it.",
        "Unlicense",
    ),
    ("unlicense-url", "Public domain, see https://unlicense.org", "Unlicense"),
    ("unlicense-name", "released under The Unlicense", "Unlicense"),
    ("wtfpl-long", "DO WHAT THE FUCK YOU WANT TO PUBLIC LICENSE, Version 2", "WTFPL"),
    ("wtfpl-starred", "Do What The F*ck You Want To Public License", "WTFPL"),
    ("wtfpl-url", "http://www.wtfpl.net/ applies", "WTFPL"),
    ("cc0-name", "CC0 1.0 Universal", "CC0-1.0"),
    ("cc0-url", "https://creativecommons.org/publicdomain/zero/1.0/", "CC0-1.0"),
    ("cc0-short", "License: CC0", "CC0-1.0"),
    (
        "cc-by-nc-sa-long",
        "License Creative Commons Attribution-NonCommercial-ShareAlike 3.0 Unported License.",
        "CC-BY-NC-SA-3.0",
    ),
    ("cc-by-nc-sa-short", "CC BY-NC-SA 3.0", "CC-BY-NC-SA-3.0"),
    ("cc-by-nc-sa-id", "cc-by-nc-sa-3.0", "CC-BY-NC-SA-3.0"),
    (
        "cc-by-nc-sa-url-deed",
        "https://creativecommons.org/licenses/by-nc-sa/3.0/deed.en_US",
        "CC-BY-NC-SA-3.0",
    ),
    ("cc-by-nc-sa-url", "http://creativecommons.org/licenses/by-nc-sa/4.0/", "CC-BY-NC-SA-4.0"),
    ("cc-by-id", "CC-BY-4.0", "CC-BY-4.0"),
    ("cc-by-international", "Attribution 4.0 International", "CC-BY-4.0"),
    ("cc-by-long", "Creative Commons Attribution 2.5 Generic", "CC-BY-2.5"),
    ("cc-by-url", "creativecommons.org/licenses/by/2.0/", "CC-BY-2.0"),
    ("cc-by-v1", "CC BY 1.0", "CC-BY-1.0"),
    ("cc-by-sa-long", "Creative Commons Attribution-ShareAlike 4.0 International License", "CC-BY-SA-4.0"),
    ("cc-by-sa-short", "CC BY-SA 3.0", "CC-BY-SA-3.0"),
    ("cc-by-sa-url", "https://creativecommons.org/licenses/by-sa/2.5/", "CC-BY-SA-2.5"),
    ("cc-by-nc-long", "Creative Commons Attribution-NonCommercial 4.0 International", "CC-BY-NC-4.0"),
    ("cc-by-nc-short", "CC BY-NC 2.0", "CC-BY-NC-2.0"),
    ("cc-by-nd-short", "CC BY-ND 4.0", "CC-BY-ND-4.0"),
    ("cc-by-nd-long", "Attribution-NoDerivs 3.0 Unported", "CC-BY-ND-3.0"),
    (
        "cc-by-nc-nd-long",
        "Creative Commons Attribution-NonCommercial-NoDerivatives 4.0 International",
        "CC-BY-NC-ND-4.0",
    ),
    ("cc-by-nc-nd-short", "CC BY-NC-ND 3.0", "CC-BY-NC-ND-3.0"),
    ("cc-by-nd-nc-url-v1", "creativecommons.org/licenses/by-nd-nc/1.0/", "CC-BY-NC-ND-1.0"),
    (
        "cc-versionless",
        "Shared under a Creative Commons Attribution-NonCommercial-ShareAlike license",
        "LicenseRef-CC-BY-NC-SA",
    ),
    (
        "gpl-3-or-later",
        "This program is free software: you can redistribute it and/or modify it under the terms\n"
        "of the GNU General Public License as published by the Free Software Foundation, either\n"
        "version 3 of the License, or (at your option) any later version.",
        "GPL-3.0-or-later",
    ),
    (
        "gpl-2-only",
        "This program is free software; you can redistribute it under the terms of the GNU General\n"
        "Public License version 2 as published by the Free Software Foundation.",
        "GPL-2.0-only",
    ),
    ("gpl-name-v3", "GNU General Public License v3", "GPL-3.0-only"),
    ("gplv3", "GPLv3", "GPL-3.0-only"),
    ("gplv2-plus", "GPLv2+", "GPL-2.0-or-later"),
    ("gpl-id-or-later", "GPL-2.0-or-later", "GPL-2.0-or-later"),
    ("gpl-url", "https://www.gnu.org/licenses/gpl-3.0.html", "GPL-3.0-only"),
    (
        "lgpl-2.1-or-later",
        "under the terms of the GNU Lesser General Public License as published by the Free\n"
        "Software Foundation; either version 2.1 of the License, or (at your option) any later version.",
        "LGPL-2.1-or-later",
    ),
    ("lgplv3", "LGPLv3", "LGPL-3.0-only"),
    ("agpl-name", "GNU Affero General Public License, version 3", "AGPL-3.0-only"),
    ("agpl-id", "AGPL-3.0-or-later", "AGPL-3.0-or-later"),
    (
        "mpl-notice",
        "This Source Code Form is subject to the terms of the Mozilla Public License, v. 2.0.\n"
        "If a copy of the MPL was not distributed with this file, You can obtain one at\n"
        "http://mozilla.org/MPL/2.0/.",
        "MPL-2.0",
    ),
    ("mpl-id", "MPL-2.0", "MPL-2.0"),
    ("public-domain-released", "This shader is released into the public domain.", "LicenseRef-public-domain"),
    ("public-domain-plain", "Public domain, do whatever you like.", "LicenseRef-public-domain"),
    ("public-domain-hyphen", "license: public-domain", "LicenseRef-public-domain"),
    (
        "all-rights-reserved",
        "Copyright (c) 2019 Ada Example. All rights reserved.",
        "LicenseRef-all-rights-reserved",
    ),
    ("noncommercial-may-not", "You may not use this in a commercial product.", "LicenseRef-noncommercial"),
    ("noncommercial-not-for", "Not for commercial use.", "LicenseRef-noncommercial"),
    ("noncommercial-only", "Non-commercial use only, please ask me otherwise.", "LicenseRef-noncommercial"),
    (
        "noncommercial-do-not",
        "Please do not use this shader for commercial purposes.",
        "LicenseRef-noncommercial",
    ),
    (
        "proprietary-own-words",
        "I am the only copyright holder of this shader.\n"
        "You cannot host, display or distribute it anywhere,\n"
        "and you cannot use it in any commercial or non-commercial project.",
        "LicenseRef-all-rights-reserved",
    ),
]


@pytest.mark.parametrize("style", ["line", "block"])
@pytest.mark.parametrize(("header", "expected"), [pytest.param(h, e, id=i) for i, h, e in WORDINGS])
def test_licence_wording_in_comment_is_detected(header: str, expected: str, style: str) -> None:
    decision = decide([shader(header, style)], site_default=SHADERTOY)
    assert decision.chosen.spdx == expected
    assert decision.chosen.evidence == "code-comment"
    assert decision.chosen.licence_class == licence_class(expected)
    assert decision.chosen.licence_class in LICENCE_CLASSES
    assert 0.0 < decision.chosen.score < 1.0
    assert decision.chosen.matched_text and len(decision.chosen.matched_text) <= 300


@pytest.mark.parametrize(
    ("spdx", "expected_class"),
    [
        ("MIT", "permissive"),
        ("BSD-2-Clause", "permissive"),
        ("BSD-3-Clause", "permissive"),
        ("Apache-2.0", "permissive"),
        ("Zlib", "permissive"),
        ("ISC", "permissive"),
        ("WTFPL", "permissive"),
        ("CC-BY-3.0", "permissive"),
        ("Unlicense", "public-domain"),
        ("CC0-1.0", "public-domain"),
        ("LicenseRef-public-domain", "public-domain"),
        ("CC-BY-SA-4.0", "copyleft"),
        ("GPL-3.0-or-later", "copyleft"),
        ("LGPL-2.1-only", "copyleft"),
        ("AGPL-3.0-only", "copyleft"),
        ("MPL-2.0", "copyleft"),
        ("CC-BY-NC-SA-3.0", "noncommercial"),
        ("CC-BY-NC-4.0", "noncommercial"),
        ("CC-BY-NC-ND-4.0", "noncommercial"),
        ("LicenseRef-noncommercial", "noncommercial"),
        ("LicenseRef-CC-BY-NC-SA", "noncommercial"),
        ("CC-BY-ND-4.0", "proprietary"),
        ("LicenseRef-all-rights-reserved", "proprietary"),
        ("NOASSERTION", "unknown"),
        ("LicenseRef-something-else", "unknown"),
    ],
)
def test_licence_family_has_its_class(spdx: str, expected_class: str) -> None:
    assert licence_class(spdx) == expected_class


@pytest.mark.parametrize(
    ("expression", "expected_class"),
    [
        ("MIT AND GPL-3.0-only", "copyleft"),
        ("MIT OR GPL-3.0-only", "permissive"),
        ("CC-BY-NC-SA-3.0 OR MIT", "permissive"),
        ("CC0-1.0 AND MIT", "permissive"),
        ("CC0-1.0 OR MIT", "public-domain"),
        ("(MIT OR CC0-1.0) AND CC-BY-SA-4.0", "copyleft"),
        ("MIT AND (CC-BY-NC-4.0 OR LicenseRef-all-rights-reserved)", "noncommercial"),
        ("MIT AND LicenseRef-all-rights-reserved", "proprietary"),
        ("GPL-2.0-or-later WITH Classpath-exception-2.0", "copyleft"),
        ("mit or apache-2.0", "permissive"),
        ("MIT AND", "unknown"),
        ("(MIT", "unknown"),
        ("", "unknown"),
    ],
)
def test_expression_class_takes_most_restrictive_for_and_least_for_or(
    expression: str, expected_class: str
) -> None:
    assert licence_class(expression) == expected_class


# --- comments only, any pass ------------------------------------------------------------------


def test_words_in_code_outside_comments_are_ignored() -> None:
    code = """#define LICENSE_MIT 1
float mit = 1.0;
float publicDomain = 0.5;
float public_domain = 0.25;
int gpl = 3;
// rings with domain repetition, a limit on the steps, mit Radius r (German)
void mainImage(out vec4 fragColor, in vec2 fragCoord) {
    vec3 allRightsReserved = vec3(mit, publicDomain, public_domain);
    fragColor = vec4(allRightsReserved * float(gpl), 1.0);
}
"""
    assert detect_in_code([code]) == []
    decision = decide([code])
    assert decision.chosen.spdx == NOASSERTION
    assert decision.chosen.evidence == "none"


def test_copyright_line_alone_is_not_a_licence() -> None:
    assert detect_in_code([shader("Copyright (c) 2020 Ada Example")]) == []


@pytest.mark.parametrize(
    "header",
    [
        "free for commercial and non-commercial use",
        "this is not in the public domain",
        "unlicensed snippet I found, author unknown",
        "attribution: based on a tutorial by Ada",
        "cc by the author of the original",
        "GGX normal distribution, the limit of the sample count",
        "Copyright 2021 Ada Example, made for the demo party",
    ],
)
def test_lookalike_wording_is_not_a_licence(header: str) -> None:
    assert detect_in_code([shader(header)]) == []


def test_licence_in_common_pass_is_found() -> None:
    common = "// Shared helpers\n// SPDX-License-Identifier: MIT\nfloat sat(float x) { return x; }\n"
    decision = decide([BODY, common], site_default=SHADERTOY)
    assert decision.chosen.spdx == "MIT"
    assert decision.chosen.evidence == "spdx-line"


def test_licence_in_unclosed_block_comment_is_found() -> None:
    code = BODY + "\n/* MIT License, by Ada Example"
    assert [v.spdx for v in detect_in_code([code])] == ["MIT"]


def test_licence_text_split_over_star_prefixed_lines_is_found() -> None:
    code = (
        "/* Permission is hereby granted,\n * free of charge, to any person\n * obtaining a copy */\n" + BODY
    )
    assert [v.spdx for v in detect_in_code([code])] == ["MIT"]


# --- "All rights reserved" --------------------------------------------------------------------


def test_all_rights_reserved_alone_is_proprietary() -> None:
    decision = decide([shader("Copyright 2023 Ada Example, all rights reserved")], site_default=SHADERTOY)
    assert decision.chosen.spdx == "LicenseRef-all-rights-reserved"
    assert decision.chosen.licence_class == "proprietary"


@pytest.mark.parametrize(
    ("grant", "expected"),
    [
        ("Permission is hereby granted, free of charge, to any person obtaining a copy.", "MIT"),
        (
            "Redistribution and use in source and binary forms, with or without modification, are\n"
            "permitted provided that the following conditions are met. Neither the name of the author\n"
            "may be used to endorse products.",
            "BSD-3-Clause",
        ),
    ],
)
def test_all_rights_reserved_followed_by_grant_is_that_licence(grant: str, expected: str) -> None:
    header = f"Copyright (c) 2017 Ada Example. All rights reserved.\n{grant}"
    verdicts = detect_in_code([shader(header)])
    assert [v.spdx for v in verdicts] == [expected]


# --- SPDX lines ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected", "expected_class"),
    [
        ("SPDX-License-Identifier: MIT", "MIT", "permissive"),
        ("SPDX-License-Identifier: MIT OR Apache-2.0", "MIT OR Apache-2.0", "permissive"),
        ("SPDX-License-Identifier: mit and cc-by-nc-sa-3.0", "MIT AND CC-BY-NC-SA-3.0", "noncommercial"),
        ("SPDX-License-Identifier: GPL-2.0+", "GPL-2.0-or-later", "copyleft"),
        ("SPDX-License-Identifier: CC0-1.0 */", "CC0-1.0", "public-domain"),
    ],
)
def test_spdx_line_is_exact_evidence(line: str, expected: str, expected_class: str) -> None:
    decision = decide([f"// {line}\n{BODY}"], site_default=SHADERTOY)
    assert decision.chosen.spdx == expected
    assert decision.chosen.licence_class == expected_class
    assert decision.chosen.evidence == "spdx-line"
    assert decision.chosen.score == 1.0
    assert len(decision.candidates) == 2  # the line and the site default; no ids picked out of it


def test_spdx_line_beats_other_code_comments() -> None:
    image = shader("The MIT License")
    common = "// SPDX-License-Identifier: Apache-2.0\nfloat f(float x) { return x; }\n"
    decision = decide([image, common])
    assert decision.chosen.spdx == "Apache-2.0"
    assert [c.spdx for c in decision.candidates] == ["Apache-2.0", "MIT"]


# --- precedence ---------------------------------------------------------------------------------


def test_code_comment_beats_dump_field() -> None:
    decision = decide([shader("MIT License")], dump_field="CC-BY-NC-SA-3.0", site_default=SHADERTOY)
    assert decision.chosen.spdx == "MIT"
    assert decision.chosen.evidence == "code-comment"
    assert [(c.spdx, c.evidence) for c in decision.candidates] == [
        ("MIT", "code-comment"),
        ("CC-BY-NC-SA-3.0", "dump-field"),
        ("CC-BY-NC-SA-3.0", "site-default"),
    ]


def test_code_comment_beats_repo_licence_file() -> None:
    decision = decide([shader("CC BY 4.0")], repo_licence_text="MIT License\n\nCopyright (c) 2020 Ada")
    assert decision.chosen.spdx == "CC-BY-4.0"
    assert [c.evidence for c in decision.candidates] == ["code-comment", "repo-licence-file"]


def test_repo_licence_file_beats_dump_field() -> None:
    decision = decide([BODY], repo_licence_text="Apache License\nVersion 2.0, January 2004", dump_field="MIT")
    assert decision.chosen.spdx == "Apache-2.0"
    assert decision.chosen.evidence == "repo-licence-file"


def test_dump_field_beats_site_default() -> None:
    decision = decide([BODY], dump_field="cc0-1.0", site_default=SHADERTOY)
    assert decision.chosen.spdx == "CC0-1.0"
    assert decision.chosen.evidence == "dump-field"
    assert decision.candidates[1].evidence == "site-default"


def test_site_default_used_when_nothing_else_states_a_licence() -> None:
    decision = decide([BODY], site_default=SHADERTOY)
    assert decision.chosen.spdx == "CC-BY-NC-SA-3.0"
    assert decision.chosen.licence_class == "noncommercial"
    assert decision.chosen.evidence == "site-default"


def test_no_evidence_and_no_site_default_is_noassertion_unknown() -> None:
    decision = decide([BODY], site_default=SITE_DEFAULTS["glslsandbox"], dump_field="  ")
    assert decision.chosen.spdx == NOASSERTION
    assert decision.chosen.licence_class == "unknown"
    assert decision.chosen.evidence == "none"
    assert decision.chosen.score == 0.0
    assert decision.candidates == (decision.chosen,)


def test_highest_scoring_code_statement_wins() -> None:
    image = shader("public domain, more or less")  # vague wording
    common = "// Helpers under the ISC License\nfloat g(float x) { return x * x; }\n"
    decision = decide([image, common])
    assert decision.chosen.spdx == "ISC"
    assert {c.spdx for c in decision.candidates} == {"ISC", "LicenseRef-public-domain"}


def test_licences_stated_in_several_passes_all_bind_image_pass_first() -> None:
    record = ProgramRecord(
        source="shadertoy",
        external_id="tie001",
        dialect="shadertoy",
        passes=[
            PassRecord("Common", "common", "// CC BY 4.0\nfloat h(float x) { return x; }\n"),
            PassRecord("Image", "image", shader("The MIT License")),
        ],
    )
    decision = decide_for_record(record, SHADERTOY)
    assert (decision.chosen.spdx, decision.chosen.licence_class) == ("MIT AND CC-BY-4.0", "permissive")
    assert [c.spdx for c in decision.candidates] == [
        "MIT AND CC-BY-4.0",
        "MIT",
        "CC-BY-4.0",
        "CC-BY-NC-SA-3.0",
    ]


@pytest.mark.parametrize(
    ("header", "spdx", "cls"),
    [
        (
            "The MIT License\n// noise() is from a GPL project: GNU General Public License version 3",
            "MIT AND GPL-3.0-only",
            "copyleft",
        ),
        (
            "fbm: CC0 1.0 Universal\n// my part: Creative Commons Attribution-NonCommercial 4.0",
            "CC0-1.0 AND CC-BY-NC-4.0",
            "noncommercial",
        ),
    ],
)
def test_conflicting_licences_in_code_combine_to_the_most_restrictive_class(header, spdx, cls) -> None:
    decision = decide([shader(header)], site_default=SHADERTOY)
    assert (decision.chosen.spdx, decision.chosen.licence_class) == (spdx, cls)


def test_decide_for_record_reads_field_and_licence_file() -> None:
    record = ProgramRecord(
        source="git",
        external_id="example.org/ada/rings/rings.frag",
        dialect="glsl",
        passes=[PassRecord("Image", "image", BODY)],
        licence_field="mit",
        repo_licence_text="BSD 2-Clause License\n\nCopyright (c) 2020, Ada. All rights reserved.",
    )
    decision = decide_for_record(record, None)
    assert decision.chosen.spdx == "BSD-2-Clause"
    assert [(c.spdx, c.evidence) for c in decision.candidates] == [
        ("BSD-2-Clause", "repo-licence-file"),
        ("MIT", "dump-field"),
    ]
    assert all(c.evidence in EVIDENCE_KINDS for c in decision.candidates)


def test_same_licence_in_two_passes_is_one_candidate() -> None:
    decision = decide([shader("MIT License"), "// MIT licensed helpers\nfloat k;\n"])
    assert [c.spdx for c in decision.candidates] == ["MIT"]
    assert decision.chosen.score == 0.95


# --- repository licence files ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("MIT License\n\nCopyright (c) 2024 Ada\n\nPermission is hereby granted, free of charge, ...", "MIT"),
        (
            "GNU GENERAL PUBLIC LICENSE\n   Version 3, 29 June 2007\n\n(full text)\n\nHow to apply: either\n"
            "version 3 of the License, or (at your option) any later version.",
            "GPL-3.0-only",
        ),
        ("Apache-2.0\n", "Apache-2.0"),
        (
            "The Unlicense\n\nThis is free and unencumbered software released into the public domain.",
            "Unlicense",
        ),
    ],
)
def test_repo_licence_file_is_recognised(text: str, expected: str) -> None:
    verdict = detect_in_licence_file(text)
    assert verdict is not None
    assert verdict.spdx == expected
    assert verdict.evidence == "repo-licence-file"


def test_repo_licence_file_without_licence_gives_nothing() -> None:
    assert detect_in_licence_file("Thanks to everyone who sent feedback.\n") is None
    assert detect_in_licence_file("") is None


# --- fields and normalisation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("messy", "expected"),
    [
        ("cc-by-nc-sa-3.0", "CC-BY-NC-SA-3.0"),
        ("CC-BY-NC-SA-3.0", "CC-BY-NC-SA-3.0"),
        ("  CC BY-NC-SA 3.0 ", "CC-BY-NC-SA-3.0"),
        ("MIT License", "MIT"),
        ("mit", "MIT"),
        ("GPLv3", "GPL-3.0-only"),
        ("GPL-2.0+", "GPL-2.0-or-later"),
        ("gpl-2.0", "GPL-2.0-only"),
        ("Public Domain", "LicenseRef-public-domain"),
        ("apache 2.0", "Apache-2.0"),
        ("CC0", "CC0-1.0"),
        ("Creative Commons Attribution-NonCommercial-ShareAlike 3.0 Unported", "CC-BY-NC-SA-3.0"),
        ("mit or apache-2.0", "MIT OR Apache-2.0"),
        ("MIT AND (Apache-2.0 OR BSD-3-Clause)", "MIT AND (Apache-2.0 OR BSD-3-Clause)"),
        ("GPL-2.0-or-later WITH Classpath-exception-2.0", "GPL-2.0-or-later WITH Classpath-exception-2.0"),
        ("LicenseRef-public-domain", "LicenseRef-public-domain"),
        ("proprietary", "LicenseRef-all-rights-reserved"),
        ("", NOASSERTION),
        ("   ", NOASSERTION),
        ("unknown", NOASSERTION),
        ("NOASSERTION", NOASSERTION),
        ("Some custom terms", NOASSERTION),
        ("Foo-1.0", NOASSERTION),
        ("MIT AND Foo-1.0", NOASSERTION),
    ],
)
def test_normalise_spdx_maps_messy_fields(messy: str, expected: str) -> None:
    assert normalise_spdx(messy) == expected


def test_verdict_from_field_records_dump_claim() -> None:
    verdict = verdict_from_field("cc-by-nc-sa-3.0")
    assert verdict is not None
    assert (verdict.spdx, verdict.licence_class, verdict.evidence) == (
        "CC-BY-NC-SA-3.0",
        "noncommercial",
        "dump-field",
    )
    assert verdict.matched_text == "cc-by-nc-sa-3.0"


@pytest.mark.parametrize("value", [None, "", "  ", "NOASSERTION", "n/a"])
def test_verdict_from_empty_field_is_none(value: str | None) -> None:
    assert verdict_from_field(value) is None


def test_every_emitted_spdx_id_is_known_to_license_expression() -> None:
    from license_expression import get_spdx_licensing

    licensing = get_spdx_licensing()
    ids = {v for v in ID_TABLE.values() if not v.startswith("LicenseRef-")}
    unknown = {i for i in ids if licensing.unknown_license_keys(licensing.parse(i))}
    assert unknown == set()
    assert all(licence_class(i) != "unknown" for i in ID_TABLE.values())


def test_matched_text_is_trimmed_to_300_characters() -> None:
    header = "All rights reserved" + " " * 5 + "\n" * 3 + "x" * 400
    verdict = detect_in_code([shader(header)])[0]
    assert verdict.matched_text == "All rights reserved"
    long_spdx = "SPDX-License-Identifier: " + " OR ".join(["MIT"] * 100)
    verdict = detect_in_code([f"// {long_spdx}\n"])[0]
    assert verdict.matched_text is not None and len(verdict.matched_text) == 300


# --- ScanCode -----------------------------------------------------------------------------------


def test_scancode_engine_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("scancode", "licensedcode", "licensedcode.cache"):
        monkeypatch.setitem(sys.modules, name, None)  # makes the import fail even where installed
    with pytest.raises(ImageProgramsError) as caught:
        detect_with_scancode([shader("MIT License")])
    assert caught.value.message == "ScanCode is not installed"
    assert caught.value.hint == "pip install 'imageprograms[scancode]'"


def test_scancode_engine_finds_mit_when_installed() -> None:
    pytest.importorskip("licensedcode")
    verdicts = detect_with_scancode(
        [shader("The MIT License\nPermission is hereby granted, free of charge.")]
    )
    assert "MIT" in {v.spdx for v in verdicts}


# --- real samples (formats only; skipped without ../shared) ---------------------------------------


def test_real_shadertoy_samples_get_valid_verdicts() -> None:
    path = SAMPLES / "shadertoy-api" / "2024-07.jsonl"
    if not path.is_file():
        pytest.skip("../shared/samples is absent")
    seen = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        shader_doc = json.loads(line)["Shader"]
        passes = sorted(shader_doc["renderpass"], key=lambda p: p.get("type") != "image")
        codes = [p.get("code") or "" for p in passes]
        decision = decide(codes, site_default=SHADERTOY)
        seen += 1
        for verdict in decision.candidates:
            assert verdict.licence_class in LICENCE_CLASSES
            assert verdict.evidence in (*EVIDENCE_KINDS, "none")
            assert 0.0 <= verdict.score <= 1.0
        text = "\n".join(codes).lower()
        if "unlicense" in text:
            assert decision.chosen.licence_class == "public-domain"
            assert decision.chosen.spdx == "Unlicense"
        if "mit license" in text:
            assert decision.chosen.spdx == "MIT"
        if not any(w in text for w in ("licen", "copyright", "public domain", "rights reserved")):
            assert decision.chosen.evidence == "site-default"
    assert seen > 0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("License: Artistic-2.0", "Artistic-2.0"),
        ("Licence: MS-PL", "MS-PL"),
        ("license: upl-1.0.", "UPL-1.0"),
        ("License: PSF-2.0", "PSF-2.0"),
        ("Licence = BSD-2-Clause-Patent", "BSD-2-Clause-Patent"),
        ("Licensed under the EUPL-1.2", "EUPL-1.2"),
    ],
)
def test_any_id_of_the_licence_database_is_recognised_after_license(header: str, expected: str) -> None:
    decision = decide([shader(header)], site_default=SHADERTOY)
    assert (decision.chosen.spdx, decision.chosen.evidence) == (expected, "code-comment")
    assert decision.chosen.licence_class == licence_class(expected) != "unknown"


@pytest.mark.parametrize("header", ["the license fair and square", "licensed as json, see below"])
def test_a_database_id_that_is_also_a_word_counts_only_after_license_colon(header: str) -> None:
    assert detect_in_code([shader(header)]) == []
