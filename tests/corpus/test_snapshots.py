"""Snapshots: selection, immutability, the export folder, verification, hostile names."""

from __future__ import annotations

import hashlib
import itertools
import json

import pytest
from sqlalchemy import text

from corpus.errors import SnapshotError
from corpus.queries import ProgramFilter
from corpus.snapshots import (
    create_snapshot,
    export_snapshot,
    list_snapshots,
    pass_file_name,
    snapshot_meta_sha256,
    verify_snapshot_dir,
)
from corpus.store import ProgramStore, mark_exact_duplicates
from tests.conftest import GRADIENT, make_record
from tests.corpus.helpers import MIT

pytestmark = pytest.mark.both_backends

CC0 = "// To the extent possible under law, the author waived all rights: CC0 1.0\n// https://creativecommons.org/publicdomain/zero/1.0/\n"
GPL = "// This program is free software under the GNU General Public License version 3.\n"


def fill(catalogue, records):
    with catalogue.session() as s:
        conn = s.connection()
        ProgramStore(catalogue).store(records, conn)
        mark_exact_duplicates(conn)


@pytest.fixture
def filled(catalogue):
    fill(
        catalogue,
        [
            make_record("b_mit", MIT + GRADIENT, title="Bee", author="ann"),
            make_record("a_cc0", CC0 + GRADIENT.replace("sin", "cos"), title="Ay [x]*", author="bob"),
            make_record("c_nc", GRADIENT.replace("sin", "tan"), title="Sea"),  # site default: noncommercial
            make_record("d_gpl", GPL + GRADIENT.replace("iTime", "iTime * 2.0")),
            make_record("e_dup", MIT + "\n\n" + GRADIENT, title="copy"),  # exact duplicate of b_mit
            make_record(
                "f_multi",
                MIT + GRADIENT.replace("sin", "exp"),
                buffer_code=MIT + "void mainImage(out vec4 o, in vec2 f){o=vec4(0.);}",
            ),
        ],
    )
    return catalogue


def test_default_snapshot_takes_permissive_and_public_domain_non_duplicates_in_key_order(filled, export):
    summary = create_snapshot(filled, "s1")
    assert summary.entries == 3
    lines = [
        json.loads(line) for line in export(filled, "s1").joinpath("manifest.jsonl").read_text().splitlines()
    ]
    assert [line["program"] for line in lines] == ["shadertoy:a_cc0", "shadertoy:b_mit", "shadertoy:f_multi"]
    assert [line["index"] for line in lines] == [0, 1, 2]
    assert lines[0]["licence_class"] == "public-domain"
    assert [p["file"] for p in lines[2]["passes"]] == ["buffer_a.glsl", "image.glsl"]


def test_allow_adds_classes_and_include_duplicates_keeps_them(filled):
    assert create_snapshot(filled, "nc", allow=["noncommercial"]).entries == 4
    flt = ProgramFilter(include_duplicates=True)
    assert create_snapshot(filled, "withdups", flt, allow=["copyleft"]).entries == 5


@pytest.fixture
def export(tmp_path):
    """``export(catalogue, name)``: export a snapshot into a new folder under the test's tmp_path."""
    folders = (tmp_path / f"export{n}" for n in itertools.count())
    return lambda catalogue, name: export_snapshot(catalogue, name, next(folders))


def test_export_writes_the_folder_format_and_verifies(filled, export):
    create_snapshot(filled, "s1")
    folder = export(filled, "s1")
    assert sorted(p.name for p in folder.iterdir()) == [
        "ATTRIBUTION.md",
        "LICENCES.md",
        "manifest.jsonl",
        "programs",
        "snapshot.json",
    ]
    meta = json.loads((folder / "snapshot.json").read_text())
    assert meta["manifest_sha256"] == hashlib.sha256((folder / "manifest.jsonl").read_bytes()).hexdigest()
    line = json.loads((folder / "manifest.jsonl").read_text().splitlines()[1])
    code = (folder / "programs" / "1" / "image.glsl").read_bytes()
    assert hashlib.sha256(code).hexdigest() == line["passes"][0]["code_sha256"]
    assert code.decode() == MIT + GRADIENT
    attribution = (folder / "ATTRIBUTION.md").read_text()
    assert (
        "**Ay \\[x\\]\\*** by bob (shadertoy:a_cc0) <https://www.shadertoy.com/view/a_cc0>, licence CC0-1.0"
        in attribution
    )
    assert "| MIT | permissive | 2 |" in (folder / "LICENCES.md").read_text()
    assert verify_snapshot_dir(folder)["entries"] == 3


def test_the_same_snapshot_exports_bit_for_bit_the_same_folder(filled, export):
    create_snapshot(filled, "s1")
    a, b = export(filled, "s1"), export(filled, "s1")
    files_a = {p.relative_to(a): p.read_bytes() for p in a.rglob("*") if p.is_file()}
    files_b = {p.relative_to(b): p.read_bytes() for p in b.rglob("*") if p.is_file()}
    assert files_a == files_b


def test_a_snapshot_never_changes_after_reimport_with_new_code_or_a_takedown(filled, export):
    create_snapshot(filled, "s1")
    before = export(filled, "s1")
    fill(filled, [make_record("b_mit", MIT + GRADIENT.replace("sin", "sqrt"), title="Bee v2", author="ann")])
    from corpus.exclusions import add_exclusion

    add_exclusion(filled, program="shadertoy:a_cc0", reason="takedown")
    after = export(filled, "s1")
    assert (before / "manifest.jsonl").read_bytes() == (after / "manifest.jsonl").read_bytes()
    assert (after / "programs/1/image.glsl").read_text() == MIT + GRADIENT
    # a new snapshot sees the new code and honours the takedown
    create_snapshot(filled, "s2")
    lines = (export(filled, "s2") / "manifest.jsonl").read_text()
    assert "a_cc0" not in lines and "Bee v2" in lines


def test_verify_finds_a_changed_file_a_missing_file_and_an_extra_file(filled, export):
    create_snapshot(filled, "s1")
    folder = export(filled, "s1")
    (folder / "programs/0/image.glsl").write_text("void main(){}")
    with pytest.raises(SnapshotError, match="does not match its code_sha256"):
        verify_snapshot_dir(folder)
    (folder / "programs/0/image.glsl").unlink()
    with pytest.raises(SnapshotError, match="missing"):
        verify_snapshot_dir(folder)
    folder2 = export(filled, "s1")
    (folder2 / "programs/0/extra.glsl").write_text("x")
    with pytest.raises(SnapshotError, match="not in the manifest"):
        verify_snapshot_dir(folder2)
    folder3 = export(filled, "s1")
    with open(folder3 / "manifest.jsonl", "a") as f:
        f.write("\n")
    with pytest.raises(SnapshotError, match="manifest_sha256"):
        verify_snapshot_dir(folder3)


def test_hostile_external_ids_never_become_paths(catalogue, tmp_path):
    fill(
        catalogue,
        [
            make_record("../../etc/x", MIT + GRADIENT, source="dir"),
            make_record("/abs/y", MIT + GRADIENT.replace("sin", "cos"), source="dir"),
        ],
    )
    create_snapshot(catalogue, "hostile")
    out = tmp_path / "exports" / "hostile"
    export_snapshot(catalogue, "hostile", out)
    written = sorted(
        str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file() and "exports" in p.parts
    )
    assert all(p.startswith("exports/hostile/") for p in written)
    assert not (tmp_path / "etc").exists()
    lines = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert {x["program"] for x in lines} == {"dir:../../etc/x", "dir:/abs/y"}
    assert pass_file_name("../../Buffer A") == "buffer_a.glsl"


def test_export_refuses_a_non_empty_folder_and_leaves_nothing_behind(filled, tmp_path):
    create_snapshot(filled, "s1")
    target = tmp_path / "busy"
    target.mkdir()
    (target / "mine.txt").write_text("user data")
    with pytest.raises(SnapshotError, match="is a folder that is not empty"):
        export_snapshot(filled, "s1", target)
    assert [p.name for p in target.iterdir()] == ["mine.txt"]


def test_a_failed_export_leaves_no_partial_folder(filled, tmp_path, monkeypatch):
    create_snapshot(filled, "s1")
    import corpus.snapshots as snapshots

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(snapshots, "_licences_doc", boom)
    with pytest.raises(OSError):
        export_snapshot(filled, "s1", tmp_path / "out")
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name or p.name == "out"]


def test_snapshot_names_are_unique_and_safe(filled):
    create_snapshot(filled, "s1")
    with pytest.raises(SnapshotError, match="already exists"):
        create_snapshot(filled, "s1")
    with pytest.raises(SnapshotError, match="not a usable snapshot name"):
        create_snapshot(filled, "../evil")
    assert [s.name for s in list_snapshots(filled)] == ["s1"]


def test_a_tampered_catalogue_is_caught_at_export(filled, export):
    create_snapshot(filled, "s1")
    with filled.engine.begin() as conn:
        conn.execute(text("UPDATE snapshot_entry SET title = 'tampered' WHERE label = 0"))
    with pytest.raises(SnapshotError, match="no longer matches"):
        export(filled, "s1")


def test_a_licence_filter_narrows_the_policy_but_never_widens_it(filled):
    with pytest.raises(SnapshotError, match="not allowed in a snapshot by default") as err:
        create_snapshot(filled, "leak", ProgramFilter(include_duplicates=False, licence_classes=["copyleft"]))
    assert err.value.hint.startswith("--allow copyleft")
    narrowed = create_snapshot(
        filled, "pd", ProgramFilter(include_duplicates=False, licence_classes=["public-domain"])
    )
    assert narrowed.entries == 1
    widened = create_snapshot(
        filled,
        "gpl",
        ProgramFilter(include_duplicates=False, licence_classes=["copyleft"]),
        allow=["copyleft"],
    )
    assert widened.entries == 1


def test_verify_catches_an_edited_attribution_and_lists_every_problem(filled, export):
    create_snapshot(filled, "s1")
    folder = export(filled, "s1")
    (folder / "ATTRIBUTION.md").write_text("nobody made these\n")
    (folder / "programs/0/image.glsl").write_text("void main(){}")
    report = verify_snapshot_dir(folder, raise_on_problems=False)
    assert report["problems"] == [
        "ATTRIBUTION.md does not match its hash in snapshot.json",
        "programs/0/image.glsl does not match its code_sha256",
    ]
    with pytest.raises(SnapshotError, match=r"\(and 1 more problem; --json lists them\)"):
        verify_snapshot_dir(folder)


def test_an_empty_selection_creates_no_snapshot(filled):
    with pytest.raises(SnapshotError, match="nothing was created"):
        create_snapshot(filled, "none", ProgramFilter(include_duplicates=False, sources=["nowhere"]))
    assert list_snapshots(filled) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "s2"),
        ("created", "2001-01-01T00:00:00Z"),
        ("filters", {"include_duplicates": True}),
        ("policy_hash", "0" * 64),
        ("entries", 99),
        ("manifest_sha256", "0" * 64),
        ("files_sha256", {}),
        ("snapshot_sha256", "0" * 64),
        ("added", "a field of its own"),
    ],
)
def test_verify_catches_an_edit_to_any_field_of_snapshot_json(filled, field, value, export):
    create_snapshot(filled, "s1")
    folder = export(filled, "s1")
    meta = json.loads((folder / "snapshot.json").read_text())
    assert meta[field] != value if field in meta else field == "added"
    meta[field] = value
    (folder / "snapshot.json").write_text(json.dumps(meta, indent=2))
    report = verify_snapshot_dir(folder, raise_on_problems=False)
    assert not report["ok"]
    assert "snapshot.json was edited: its fields do not match its snapshot_sha256" in report["problems"]


def _reseal(folder, **changes):
    """Edit snapshot.json as someone who also knows to recompute its own hash would."""
    meta = json.loads((folder / "snapshot.json").read_text()) | changes
    meta["snapshot_sha256"] = snapshot_meta_sha256(meta)
    (folder / "snapshot.json").write_text(json.dumps(meta))


def test_verify_checks_the_manifest_against_the_filters_snapshot_json_claims(filled, export):
    create_snapshot(filled, "s1")
    folder = export(filled, "s1")
    filters = json.loads((folder / "snapshot.json").read_text())["filters"]
    _reseal(folder, filters=filters | {"licence_classes": ["public-domain"]})
    report = verify_snapshot_dir(folder, raise_on_problems=False)
    assert report["problems"] == [
        "manifest.jsonl:2: shadertoy:b_mit is outside the licence classes filter",
        "manifest.jsonl:3: shadertoy:f_multi is outside the licence classes filter",
    ]
    _reseal(folder, filters=filters | {"sources": ["glslsandbox"], "authors": ["Ann"]})
    problems = verify_snapshot_dir(folder, raise_on_problems=False)["problems"]
    assert problems[0] == "manifest.jsonl:1: shadertoy:a_cc0 is outside the sources filter"
    _reseal(folder, filters=filters | {"authors": ["BOB", "ann"], "spdx": ["mit", "cc0-1.0"]})
    assert verify_snapshot_dir(folder, raise_on_problems=False)["problems"] == [
        "manifest.jsonl:3: shadertoy:f_multi is outside the authors filter"
    ]


def test_verify_checks_the_name_against_the_documents(filled, export):
    create_snapshot(filled, "s1")
    folder = export(filled, "s1")
    _reseal(folder, name="renamed")
    assert verify_snapshot_dir(folder, raise_on_problems=False)["problems"] == [
        "ATTRIBUTION.md names another snapshot than snapshot.json does",
        "LICENCES.md names another snapshot than snapshot.json does",
    ]


def test_an_export_whose_snapshot_hash_was_removed_fails_verification(filled, export):
    create_snapshot(filled, "s1")
    folder = export(filled, "s1")
    meta = json.loads((folder / "snapshot.json").read_text())
    del meta["snapshot_sha256"]
    meta["filters"] = meta["filters"] | {"licence_classes": ["permissive"]}  # an edit it would hide
    (folder / "snapshot.json").write_text(json.dumps(meta))
    report = verify_snapshot_dir(folder, raise_on_problems=False)
    assert not report["ok"]
    assert report["problems"][0].startswith("snapshot.json has no snapshot_sha256")
    with pytest.raises(SnapshotError, match="failed verification: snapshot.json has no snapshot_sha256"):
        verify_snapshot_dir(folder)


def _vetted_snapshot_hint(catalogue) -> str:
    with pytest.raises(SnapshotError, match="no program is vetted, so snapshot v would be empty") as err:
        create_snapshot(catalogue, "v", ProgramFilter(include_duplicates=False, vetted=True))
    return err.value.hint


def test_a_vetted_snapshot_with_nothing_vetted_says_what_to_run(filled):
    from corpus.validations import load_program, record_validations, store_verdicts

    assert _vetted_snapshot_hint(filled).startswith("no program is validated yet: run render validate")
    item = load_program(filled, "shadertoy:b_mit")
    record_validations(
        filled,
        [{"code_sha256": item["code_sha256"], "dialect": "shadertoy", "renderer": "r", "status": "ok"}],
    )
    assert _vetted_snapshot_hint(filled) == "no program is vetted yet: run render vet"
    with filled.session() as s:
        ids = dict(s.execute(text("SELECT external_id, id FROM program")).all())
    missing = "no profile at 256x256: validate with that size"
    verdicts = [
        {"program_id": ids[key], "code_sha256": "c", "vetted": False, "reasons": [missing]}
        for key in ("a_cc0", "b_mit")
    ]
    store_verdicts(filled, verdicts, "policy")
    assert _vetted_snapshot_hint(filled) == (
        "the vetting policy judges 256x256 profiles and 2 programs have none:"
        " run render validate --again --sizes 256, then render vet"
    )
    store_verdicts(filled, [v | {"reasons": ["constant picture"]} for v in verdicts], "policy")
    assert _vetted_snapshot_hint(filled).startswith(
        "render vet accepted no program; 2 of 2 were rejected first for: constant picture"
    )
