from pathlib import Path

from corpus.attribution import attribution_line, credits_path, sheet_credits, write_credits

ROWS = [
    {
        "program": "shadertoy:abc123",
        "title": "Stars *and*  [bars]",
        "author": "ann",
        "url": "https://www.shadertoy.com/view/abc123",
        "licence_spdx": "CC-BY-NC-SA-3.0",
        "licence_class": "noncommercial",
    },
    {
        "program": "dir:plasma",
        "title": None,
        "author": None,
        "url": None,
        "licence_spdx": None,
        "licence_class": None,
    },
    {
        "program": "git:x/y:a.frag",
        "title": "Rings",
        "author": "bo",
        "url": "https://example.org/a.frag",
        "licence_spdx": "MIT",
        "licence_class": "permissive",
    },
]


def test_sheet_credits_list_every_tile_in_order_with_escaped_titles_and_licences():
    text = sheet_credits("sheet.png", ROWS)
    listed = [line for line in text.splitlines() if line.startswith("- ")]
    assert listed == [
        r"- 1: **Stars \*and\* \[bars\]** by ann (shadertoy:abc123) <https://www.shadertoy.com/view/abc123>, "
        "licence CC-BY-NC-SA-3.0",
        "- 2: **untitled** by unknown author (dir:plasma), licence NOASSERTION",
        "- 3: **Rings** by bo (git:x/y:a.frag) <https://example.org/a.frag>, licence MIT",
    ]
    assert text.startswith("# Programs in sheet.png\n")
    # the non-commercial one and the one of unknown licence limit what the picture may be used for
    warning = "2 of 3 programs are under licences that limit the picture's use (noncommercial 1, unknown 1)"
    assert warning in text


def test_blank_names_odd_ids_and_urls_with_spaces_stay_well_formed_markdown():
    row = {
        "index": 7,
        "program": "git:me/repo:a_b.frag",
        "title": "  \t ",
        "author": " ",
        "url": "https://example.org/my shader<1>.frag",
        "licence_spdx": "MIT",
    }
    assert attribution_line(row) == (
        "- 7: **untitled** by unknown author (git:me/repo:a_b.frag) "
        "<https://example.org/my%20shader%3C1%3E.frag>, licence MIT"
    )
    assert sheet_credits("we*ird_[name].png", []).startswith(r"# Programs in we\*ird\_\[name\].png")


def test_a_sheet_of_permissive_programs_carries_no_warning():
    assert "limit" not in sheet_credits("s.png", ROWS[2:])


def test_credits_are_written_beside_the_picture_and_replace_old_ones(tmp_path: Path):
    picture = tmp_path / "vetted.png"
    assert credits_path(picture) == tmp_path / "vetted.credits.md"
    write_credits(picture, ROWS)
    assert write_credits(picture, ROWS[2:]).read_text() == sheet_credits("vetted.png", ROWS[2:])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vetted.credits.md"]  # no temporary file left
