"""Canonical ids: every spelling of a licence the detector emits, mapped to its SPDX id."""

from __future__ import annotations

from corpus.licences.verdicts import ALL_RIGHTS_RESERVED, NONCOMMERCIAL, PUBLIC_DOMAIN

CC_VERSIONS = ("1.0", "2.0", "2.5", "3.0", "4.0")
CC_VARIANTS = ("", "-SA", "-ND", "-NC", "-NC-SA", "-NC-ND")
GPL_VERSIONS = {"GPL": ("1.0", "2.0", "3.0"), "LGPL": ("2.0", "2.1", "3.0"), "AGPL": ("1.0", "3.0")}
# A GPL-family licence named without a version lets the reader pick any version (GPL-2.0 s. 9).
GPL_FIRST = {"GPL": "1.0", "LGPL": "2.0", "AGPL": "3.0"}
MPL_VERSIONS = ("1.0", "1.1", "2.0")


def _build_id_table() -> dict[str, str]:
    table: dict[str, str] = {}
    simple = (
        "MIT",
        "MIT-0",
        "ISC",
        "Zlib",
        "0BSD",
        "BSD-2-Clause",
        "BSD-3-Clause",
        "BSD-4-Clause",
        "Apache-1.0",
        "Apache-1.1",
        "Apache-2.0",
        "Unlicense",
        "WTFPL",
        "CC0-1.0",
        "BSL-1.0",
        *(f"MPL-{v}" for v in MPL_VERSIONS),
        PUBLIC_DOMAIN,
        ALL_RIGHTS_RESERVED,
        NONCOMMERCIAL,
        "LicenseRef-BSD",
    )
    for ident in simple:
        table[ident.lower()] = ident
    for variant in CC_VARIANTS:
        table[f"licenseref-cc-by{variant.lower()}"] = f"LicenseRef-CC-BY{variant}"
        for version in CC_VERSIONS:
            ident = f"CC-BY{variant}-{version}"
            table[ident.lower()] = ident
    for family, versions in GPL_VERSIONS.items():
        for version in versions:
            only, later = f"{family}-{version}-only", f"{family}-{version}-or-later"
            table[only.lower()] = only
            table[later.lower()] = later
            table[f"{family}-{version}".lower()] = only
            table[f"{family}-{version}+".lower()] = later
    table.update(
        {
            "public domain": PUBLIC_DOMAIN,
            "public-domain": PUBLIC_DOMAIN,
            "publicdomain": PUBLIC_DOMAIN,
            "pd": PUBLIC_DOMAIN,
            "licenseref-scancode-public-domain": PUBLIC_DOMAIN,
            "all rights reserved": ALL_RIGHTS_RESERVED,
            "all-rights-reserved": ALL_RIGHTS_RESERVED,
            "proprietary": ALL_RIGHTS_RESERVED,
            "licenseref-scancode-proprietary-license": ALL_RIGHTS_RESERVED,
            "noncommercial": NONCOMMERCIAL,
            "non-commercial": NONCOMMERCIAL,
            "bsd": "LicenseRef-BSD",
            "cc0": "CC0-1.0",
            "mit license": "MIT",
            "the mit license": "MIT",
        }
    )
    return table


#: Lower-cased spelling -> canonical id, for every id the detector emits and a few aliases.
ID_TABLE = _build_id_table()
VAGUE_REFS = {v for v in ID_TABLE.values() if v == "LicenseRef-BSD" or v.startswith("LicenseRef-CC-")}


def lookup_id(text: str) -> str | None:
    return ID_TABLE.get(" ".join(text.lower().split()))
