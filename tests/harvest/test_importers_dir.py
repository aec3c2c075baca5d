"""Folder and git-checkout imports: which files, which licence, which name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from corpus.records import ProgramRecord
from harvest.importers import MAX_CODE_BYTES, BadRecord, detect_format, normalise_remote_url, read_records

SANDBOX = "uniform float time;\nuniform vec2 resolution;\nvoid main() { gl_FragColor = vec4(fract(time)); }\n"
TOY = "void mainImage(out vec4 c, in vec2 p) { c = vec4(p.x / iResolution.x); }\n"
PLAIN = "#version 330\nout vec4 o;\nvoid main() { o = vec4(0.5); }\n"


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return root


def split(items):
    items = list(items)
    return [i for i in items if isinstance(i, ProgramRecord)], [i for i in items if isinstance(i, BadRecord)]


def test_shader_files_are_read_sorted_and_others_skipped(tmp_path):
    root = write(
        tmp_path / "shaders",
        {
            "z.frag": SANDBOX,
            "a/wave.glsl": TOY,
            "a/b.fs": PLAIN,
            "c.fsh": PLAIN,
            "d.shader": PLAIN,
            "vertex.vert": PLAIN,
            "notes.txt": "hello",
            ".hidden/h.frag": PLAIN,
            ".git/x.frag": PLAIN,
        },
    )
    assert detect_format(root) == "dir"
    records, bad = split(read_records(root))
    assert bad == []
    assert [r.key for r in records] == [
        "dir:shaders/a/b.fs",
        "dir:shaders/a/wave.glsl",
        "dir:shaders/c.fsh",
        "dir:shaders/d.shader",
        "dir:shaders/z.frag",
    ]
    assert [r.dialect for r in records] == ["glsl", "shadertoy", "glsl", "glsl", "glslsandbox"]
    assert records[1].origin == f"{root}!a/wave.glsl"
    assert records[1].title == "wave"
    assert records[1].image_pass().code == TOY


def test_licence_applies_to_nested_shaders_and_the_nearest_wins(tmp_path):
    root = write(
        tmp_path / "repo",
        {
            "LICENSE": "MIT License\n",
            "top.frag": PLAIN,
            "deep/er/nested.frag": PLAIN,
            "gpl/COPYING.txt": "GNU GENERAL PUBLIC LICENSE\n",
            "gpl/sub/g.frag": PLAIN,
            "cc/licence.md": "CC0 1.0\n",
            "cc/c.frag": PLAIN,
        },
    )
    records, _ = split(read_records(root))
    licences = {
        r.external_id.removeprefix("repo/"): (r.repo_licence_path, r.repo_licence_text) for r in records
    }
    assert licences == {
        "top.frag": ("LICENSE", "MIT License\n"),
        "deep/er/nested.frag": ("LICENSE", "MIT License\n"),
        "gpl/sub/g.frag": ("gpl/COPYING.txt", "GNU GENERAL PUBLIC LICENSE\n"),
        "cc/c.frag": ("cc/licence.md", "CC0 1.0\n"),
    }


def test_licence_above_the_imported_root_does_not_apply(tmp_path):
    write(tmp_path, {"LICENSE": "MIT License\n", "inner/a.frag": PLAIN})
    (record,) = read_records(tmp_path / "inner")
    assert record.repo_licence_text is None and record.repo_licence_path is None


@pytest.mark.parametrize(
    ("url", "repo"),
    [
        ("git@github.com:someone/shaders.git", "github.com/someone/shaders"),
        ("https://github.com/someone/shaders.git", "github.com/someone/shaders"),
        ("https://user:secret@GitLab.com:8443/group/sub/shaders/", "gitlab.com/group/sub/shaders"),
        ("ssh://git@example.org/x/y.git", "example.org/x/y"),
        ("/srv/git/shaders.git", None),
        ("file:///srv/git/shaders.git", None),
    ],
)
def test_remote_urls_are_normalised(url, repo):
    assert normalise_remote_url(url) == repo


def git_config(url: str) -> str:
    return (
        "[core]\n\trepositoryformatversion = 0\n"
        '[remote "upstream"]\n\turl = https://example.org/not/this.git\n'
        f'[remote "origin"]\n\turl = {url}\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n'
        '[branch "main"]\n\tremote = origin\n'
    )


def test_git_checkout_names_programs_by_repository(tmp_path):
    root = write(tmp_path / "checkout", {".git/config": git_config("git@github.com:someone/shaders.git"),
                                         "fx/glow.frag": SANDBOX})  # fmt: skip
    (record,) = read_records(root)
    assert record.key == "git:github.com/someone/shaders/fx/glow.frag"
    assert record.source == "git"
    assert record.origin == f"{root}!fx/glow.frag"


def test_git_worktree_file_points_at_the_config(tmp_path):
    write(tmp_path / "main-repo", {".git/config": git_config("https://github.com/o/r.git")})
    root = write(tmp_path / "wt", {"a.frag": PLAIN})
    write(tmp_path / "main-repo/.git/worktrees/wt", {"commondir": "../..\n"})
    (root / ".git").write_text(f"gitdir: {tmp_path / 'main-repo/.git/worktrees/wt'}\n")
    (record,) = read_records(root)
    assert record.key == "git:github.com/o/r/a.frag"


def test_checkout_without_origin_is_a_plain_dir(tmp_path):
    root = write(tmp_path / "c", {".git/config": "[core]\n\tbare = false\n", "a.frag": PLAIN})
    (record,) = read_records(root)
    assert record.key == "dir:c/a.frag"


def test_bad_files_are_reported_and_the_rest_read(tmp_path):
    root = write(
        tmp_path / "d",
        {
            "big.frag": "//" + "x" * MAX_CODE_BYTES,
            "latin1.frag": "// caf\xe9\n".encode("latin-1") + PLAIN.encode(),
            "empty.frag": " \n",
            "ok.frag": PLAIN,
        },
    )
    records, bad = split(read_records(root))
    assert [r.external_id for r in records] == ["d/ok.frag"]
    reasons = {b.location: b.reason for b in bad}
    assert reasons[f"{root}!big.frag"] == f"code field too large ({MAX_CODE_BYTES + 2} bytes, limit 4 MiB)"
    assert reasons[f"{root}!latin1.frag"] == "not valid UTF-8 (byte 6)"
    assert reasons[f"{root}!empty.frag"] == "empty.frag has no code"


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks here")
def test_symlinks_outside_the_root_are_not_followed(tmp_path):
    write(tmp_path / "outside", {"secret.frag": PLAIN, "dir/s.frag": PLAIN})
    root = write(tmp_path / "root", {"real.frag": PLAIN})
    (root / "escape.frag").symlink_to(tmp_path / "outside/secret.frag")
    (root / "linked-dir").symlink_to(tmp_path / "outside/dir")
    (root / "alias.frag").symlink_to(root / "real.frag")
    records, bad = split(read_records(root))
    assert [r.external_id for r in records] == ["root/alias.frag", "root/real.frag"]
    assert bad == [BadRecord(f"{root}!escape.frag", "symlink to a file outside the imported folder")]


def test_single_shader_file_is_a_dir_import(tmp_path):
    path = write(tmp_path, {"one.frag": TOY}) / "one.frag"
    assert detect_format(path) == "dir"
    (record,) = read_records(path)
    assert (record.key, record.dialect) == (f"dir:{tmp_path.name}/one.frag", "shadertoy")


def test_two_folders_with_the_same_file_name_stay_two_programs(tmp_path):
    a = write(tmp_path / "repoA", {"main.frag": PLAIN, "LICENSE": "MIT License"})
    b = write(tmp_path / "repoB", {"main.frag": SANDBOX})
    keys = [r.key for r in read_records(a)] + [r.key for r in read_records(b)]
    assert keys == ["dir:repoA/main.frag", "dir:repoB/main.frag"]
