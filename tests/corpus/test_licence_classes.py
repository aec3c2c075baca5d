"""Licence classes come from license-expression's licence database, with our overrides written down."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from sqlalchemy import text

from corpus import db as dbmod
from corpus.filters import LICENCE_CLASSES
from corpus.licences import (
    CATEGORY_CLASSES,
    CLASS_OVERRIDES,
    database_categories,
    licence_class,
    normalise_spdx,
)
from corpus.snapshots import create_snapshot
from corpus.store import ProgramStore
from tests.conftest import ROOT, make_record

pytestmark = pytest.mark.both_backends


@pytest.mark.parametrize(
    ("spdx", "expected"),
    [
        # permissive ids the old hand list of 24 did not know (they came out "unknown")
        ("Artistic-2.0", "permissive"),
        ("MS-PL", "permissive"),
        ("UPL-1.0", "permissive"),
        ("PSF-2.0", "permissive"),
        ("BSD-2-Clause-Patent", "permissive"),
        ("CECILL-B", "permissive"),
        ("Unicode-DFS-2016", "permissive"),
        ("BSD-3-Clause-Attribution", "permissive"),
        ("CC-BY-4.0", "permissive"),
        ("WTFPL", "permissive"),
        # the noncommercial family, whatever the version or port
        ("CC-BY-NC-1.0", "noncommercial"),
        ("CC-BY-NC-SA-2.0-UK", "noncommercial"),
        ("CC-BY-NC-ND-3.0-IGO", "noncommercial"),
        ("CC-BY-NC-SA-4.0", "noncommercial"),
        ("PolyForm-Noncommercial-1.0.0", "noncommercial"),
        ("LicenseRef-CC-BY-NC-SA", "noncommercial"),
        # public domain
        ("CC0-1.0", "public-domain"),
        ("Unlicense", "public-domain"),
        ("CC-PDDC", "public-domain"),
        ("0BSD", "permissive"),
        # copyleft, strong and weak
        ("GPL-2.0-only", "copyleft"),
        ("GPL-3.0-or-later", "copyleft"),
        ("GPL-2.0+", "copyleft"),
        ("AGPL-3.0-only", "copyleft"),
        ("LGPL-2.1-or-later", "copyleft"),
        ("MPL-2.0", "copyleft"),
        ("EPL-2.0", "copyleft"),
        ("CC-BY-SA-3.0", "copyleft"),
        ("OFL-1.1", "copyleft"),
        # no open grant
        ("CC-BY-ND-4.0", "proprietary"),
        ("BUSL-1.1", "proprietary"),
        ("SSPL-1.0", "proprietary"),
        ("LicenseRef-all-rights-reserved", "proprietary"),
        # nothing known
        ("NOASSERTION", "unknown"),
        ("LicenseRef-made-up", "unknown"),
        ("Not-A-Licence-1.0", "unknown"),
    ],
)
def test_each_spdx_id_has_the_class_of_its_licence(spdx: str, expected: str) -> None:
    assert licence_class(spdx) == expected


def test_every_category_of_the_database_has_a_class() -> None:
    assert set(database_categories().values()) <= set(CATEGORY_CLASSES)
    assert set(CATEGORY_CLASSES.values()) <= set(LICENCE_CLASSES)


def test_every_database_licence_of_a_classed_category_gets_that_class_or_an_override() -> None:
    overridden = [re.compile(o.ids, re.IGNORECASE) for o in CLASS_OVERRIDES]
    for ident, category in database_categories().items():
        if " " in ident:  # an alias with a space ("GPL 2.0") is no SPDX token
            continue
        if any(p.fullmatch(ident) for p in overridden):
            continue
        assert licence_class(ident) == CATEGORY_CLASSES[category], ident
    assert len(database_categories()) > 2000  # the whole database, not a hand list


def test_every_override_has_a_reason_a_known_class_and_matches_something() -> None:
    ours = {"LicenseRef-CC-BY", "LicenseRef-CC-BY-SA", "LicenseRef-BSD", "NOASSERTION"}
    ours |= {"LicenseRef-public-domain", "LicenseRef-all-rights-reserved", "LicenseRef-noncommercial"}
    known = set(database_categories()) | {i.upper() for i in ours}
    for override in CLASS_OVERRIDES:
        assert override.licence_class in LICENCE_CLASSES
        assert len(override.reason) > 20, override.ids
        pattern = re.compile(override.ids, re.IGNORECASE)
        assert any(pattern.fullmatch(i) for i in known), f"override {override.ids} matches no id"


def test_free_form_names_of_newly_classed_licences_reach_their_class() -> None:
    assert licence_class(normalise_spdx("artistic-2.0")) == "permissive"
    assert licence_class(normalise_spdx("MS-PL OR GPL-3.0-only")) == "permissive"


def test_a_default_snapshot_takes_a_program_under_a_newly_classed_permissive_licence(catalogue) -> None:
    with catalogue.session() as s:
        ProgramStore(catalogue).store(
            [make_record("artistic", "// SPDX-License-Identifier: Artistic-2.0\nvoid main(){}\n")],
            s.connection(),
        )
    assert create_snapshot(catalogue, "s1").entries == 1


def test_the_licence_database_is_read_on_first_use_not_at_import() -> None:
    probe = (
        "import corpus.store, corpus.licences as l\n"
        "print(l.database_categories.cache_info().currsize)\n"
        "l.licence_class('MIT')\n"
        "print(l.database_categories.cache_info().currsize)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "1"]


def test_migration_0005_classes_stored_verdicts_again(tmp_path) -> None:
    cat = dbmod.connect(str(tmp_path / "cat.db"), must_exist=False)
    dbmod.upgrade(cat, "0004_frontier_claim_order")
    candidates = [{"spdx": "Artistic-2.0", "licence_class": "unknown", "evidence": "spdx-line"}]
    with cat.engine.begin() as conn:
        conn.execute(text("INSERT INTO source (id, name) VALUES (1, 'git')"))
        for pid, spdx, cls in [(1, "Artistic-2.0", "unknown"), (2, "MIT", "permissive")]:
            conn.execute(
                text(
                    "INSERT INTO program (id, source_id, external_id, first_seen, last_seen, dialect,"
                    " code_sha256, norm_sha256) VALUES (:id, 1, :id, '2026-01-01', '2026-01-01', 'glsl',"
                    " 'c', 'n')"
                ),
                {"id": pid},
            )
            conn.execute(
                text(
                    "INSERT INTO licence (program_id, code_sha256, spdx, licence_class, evidence, score,"
                    " engine, candidates) VALUES (:id, 'c', :spdx, :cls, 'spdx-line', 1.0, 'builtin', :cands)"
                ),
                {"id": pid, "spdx": spdx, "cls": cls, "cands": json.dumps(candidates) if pid == 1 else None},
            )
    dbmod.upgrade(cat)
    with cat.engine.connect() as conn:
        rows = conn.execute(text("SELECT program_id, licence_class, candidates FROM licence")).all()
    assert [(pid, cls) for pid, cls, _ in rows] == [(1, "permissive"), (2, "permissive")]
    assert json.loads(rows[0][2])[0]["licence_class"] == "permissive" and rows[1][2] is None
