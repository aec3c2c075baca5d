"""The git crawl source on real repositories made with ``git init`` in a temporary folder and
crawled by ``file://`` URL: ids, licence, provenance, a 100 MB file and a symlink out of the
repository skipped, and a new commit seen as a new version with the old code kept."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from corpus.errors import ImageProgramsError, UsageProblem
from corpus.models import Blob, Program, ProgramVersion
from corpus.queries import show_program
from harvest.crawling import crawl
from harvest.sources.git import repository_id, without_credentials

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

MIT = """MIT License

Copyright (c) 2024 Test Author

Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
associated documentation files (the "Software"), to deal in the Software without restriction,
including without limitation the rights to use, copy, modify, merge, publish, distribute,
sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED.
"""
WAVES = "void mainImage(out vec4 c, in vec2 p){ c = vec4(sin(p.x * 0.1 + iTime), 0.3, 0.6, 1.0); }\n"
SANDBOX = (
    "uniform float time;\nuniform vec2 resolution;\n"
    "void main(){ gl_FragColor = vec4(gl_FragCoord.xy / resolution, sin(time), 1.0); }\n"
)
ISF = (
    '/*{ "DESCRIPTION": "a ramp", "CREDIT": "tester", "INPUTS": [] }*/\n'
    "void main(){ gl_FragColor = vec4(isf_FragNormCoord, 0.0, 1.0); }\n"
)
SECRET = "void mainImage(out vec4 c, in vec2 p){ c = vec4(0.0); } // OUTSIDE-THE-REPOSITORY\n"


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd.parent)}  # no user config
    command = [
        "git",
        "-c",
        "user.name=Tester",
        "-c",
        "user.email=t@example.org",
        "-c",
        "commit.gpgsign=false",
    ]
    done = subprocess.run([*command, *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, str]:
    """A work tree and the bare repository it pushes to; returns (work tree, file:// URL)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.frag").write_text(SECRET)
    (outside / "LICENSE").write_text("GNU GENERAL PUBLIC LICENSE Version 3 OUTSIDE-THE-REPOSITORY\n")
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / "isf").mkdir()
    (work / "LICENSE").write_text(MIT)
    (work / "waves.frag").write_text(WAVES)
    (work / "sub" / "sandbox.glsl").write_text(SANDBOX)
    (work / "isf" / "ramp.fs").write_text(ISF)
    (work / "notes.txt").write_text("not a shader\n")
    with open(work / "huge.frag", "wb") as f:  # 100 MB, sparse on disk
        f.truncate(100 * 1024 * 1024)
    (work / "escape.frag").symlink_to(outside / "secret.frag")
    (work / "sub" / "LICENSE").symlink_to(outside / "LICENSE")  # a licence from outside: never read
    return work, published(work, "shaders", "first shaders")


def published(work: Path, name: str, message: str) -> str:
    """Commit everything in ``work`` as a new repository that pushes to a bare one beside it
    (``served/NAME.git``); returns the bare repository's file:// URL."""
    git(work, "init", "--quiet", "--initial-branch=main")
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", message)
    bare = work.parent / "served" / f"{name}.git"
    bare.parent.mkdir(exist_ok=True)
    git(work.parent, "clone", "--quiet", "--bare", str(work), str(bare))
    git(work, "remote", "add", "origin", str(bare))
    return f"file://{bare}"


def programs(catalogue) -> dict[str, Program]:
    with catalogue.session() as s:
        return {p.external_id: p for p in s.execute(select(Program)).scalars()}


def test_a_repository_by_url_gives_its_shaders_with_ids_licence_and_provenance(tmp_path, catalogue, repo):
    work, url = repo
    report = crawl(catalogue, "git", base_url=url, options={"cache_dir": tmp_path / "cache"})
    prefix = repository_id(url)
    assert prefix == str(tmp_path / "served" / "shaders").lstrip("/")
    assert sorted(programs(catalogue)) == [
        f"{prefix}/isf/ramp.fs",
        f"{prefix}/sub/sandbox.glsl",
        f"{prefix}/waves.frag",
    ]
    assert report.added == 3 and report.blocked is None
    waves = show_program(catalogue, f"git:{prefix}/waves.frag")
    assert waves["source"] == "git" and waves["dialect"] == "shadertoy"
    assert waves["passes"][0]["code"] == WAVES
    assert (waves["licence_spdx"], waves["licence_evidence"]) == ("MIT", "repo-licence-file")
    commit = git(work, "rev-parse", "HEAD")
    assert waves["provenance"][0]["location"] == f"{url}@{commit}!waves.frag"
    assert waves["provenance"][0]["via"] == "crawl:git"
    assert show_program(catalogue, f"git:{prefix}/isf/ramp.fs")["dialect"] == "isf"
    sandbox = show_program(catalogue, f"git:{prefix}/sub/sandbox.glsl")
    assert sandbox["dialect"] == "glslsandbox" and sandbox["licence_spdx"] == "MIT"  # not the outside GPL


def test_a_100_mb_file_and_a_symlink_out_of_the_repository_are_skipped_with_a_reason(
    tmp_path, catalogue, repo
):
    _, url = repo
    report = crawl(catalogue, "git", base_url=url, options={"cache_dir": tmp_path / "cache"})
    skipped = sorted(report.skipped)
    assert len(skipped) == 2 and report.parse_errors == 2
    assert "escape.frag" in skipped[0] and "symlink" in skipped[0]
    assert "huge.frag" in skipped[1] and "too large" in skipped[1]
    with catalogue.session() as s:
        texts = list(s.execute(select(Blob.text)).scalars())
    assert texts and not any("OUTSIDE-THE-REPOSITORY" in t for t in texts)


def test_a_new_commit_is_a_new_version_and_the_old_code_stays(tmp_path, catalogue, repo):
    work, url = repo
    options = {"cache_dir": tmp_path / "cache"}
    crawl(catalogue, "git", base_url=url, options=options)
    prefix = repository_id(url)
    before = programs(catalogue)[f"{prefix}/waves.frag"].code_sha256
    changed = WAVES.replace("0.3", "0.9")
    (work / "waves.frag").write_text(changed)
    (work / "sub" / "more.frag").write_text(WAVES.replace("0.6", "0.1"))
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", "brighter")
    git(work, "push", "--quiet", "origin", "main")
    report = crawl(catalogue, "git", base_url=url, options=options)
    assert (report.added, report.updated, report.unchanged) == (1, 1, 2)
    after = programs(catalogue)[f"{prefix}/waves.frag"]
    assert after.code_sha256 != before
    with catalogue.session() as s:
        versions = s.execute(select(ProgramVersion.code_sha256).where(ProgramVersion.program_id == after.id))
        assert sorted(versions.scalars()) == sorted([before, after.code_sha256])
    waves = show_program(catalogue, f"git:{prefix}/waves.frag")
    assert waves["passes"][0]["code"] == changed
    assert waves["provenance"][-1]["location"].startswith(f"{url}@{git(work, 'rev-parse', 'HEAD')}!")


def test_the_cache_lies_beside_the_catalogue_and_a_crawl_through_the_cli_reports_skips(
    tmp_path, repo, capsys
):
    from corpus.cliutils import run_app
    from harvest.cli import app

    _, url = repo
    db = tmp_path / "c.db"
    assert run_app(app, "harvest", ["crawl", "git", "--base-url", url, "--db", str(db), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["added"] == 3 and len(out["skipped"]) == 2
    clones = list((tmp_path / "c.db.repos").iterdir())
    assert len(clones) == 1 and (clones[0] / "waves.frag").is_file()
    assert run_app(app, "harvest", ["crawl", "git", "--base-url", url, "--db", str(db)]) == 0
    captured = capsys.readouterr()
    assert "0 programs added" in captured.out and "skipped" in captured.err and "huge.frag" in captured.err
    assert run_app(app, "harvest", ["crawl", "git", "--db", str(db)]) != 0
    assert "--base-url" in capsys.readouterr().err


def test_an_unreachable_repository_is_a_clear_error_that_never_shows_the_password(tmp_path, catalogue):
    url = "http://someone:s3cretToken@127.0.0.1:9/owner/repo.git"
    with pytest.raises(ImageProgramsError, match="git could not sync") as err:
        crawl(catalogue, "git", base_url=url, options={"cache_dir": tmp_path / "cache"})
    assert "s3cretToken" not in str(err.value) and "public" in err.value.hint
    missing = f"file://{tmp_path}/nothing-here.git"
    with pytest.raises(ImageProgramsError, match="git could not sync"):
        crawl(catalogue, "git", base_url=missing, options={"cache_dir": tmp_path / "cache"})
    assert not any((tmp_path / "cache").glob("*/*")), "no half clone is left behind"


@pytest.mark.parametrize(
    ("url", "repo"),
    [
        ("https://user:token@github.com/owner/shaders.git", "github.com/owner/shaders"),
        ("git@gitlab.com:group/sub/shaders.git", "gitlab.com/group/sub/shaders"),
        ("ssh://git@example.org:2222/owner/shaders", "example.org/owner/shaders"),
        ("file:///srv/git/shaders.git", "srv/git/shaders"),
    ],
)
def test_repository_ids_are_the_url_without_scheme_credentials_and_dot_git(url, repo):
    assert repository_id(url) == repo


@pytest.mark.parametrize(
    "url", ["/srv/git/shaders", "./shaders", "-uhelp", "ext::sh -c touch% /tmp/x", "ftp://h/x"]
)
def test_what_is_not_a_repository_url_is_refused_before_git_runs(url):
    with pytest.raises(UsageProblem):
        repository_id(url)


def test_credentials_never_reach_provenance():
    assert (
        without_credentials("https://user:token@github.com:8443/a/b.git") == "https://github.com:8443/a/b.git"
    )
    assert without_credentials("git@github.com:a/b.git") == "git@github.com:a/b.git"


def test_limit_stops_a_repository_crawl_and_reparse_says_there_is_nothing_to_reparse(
    tmp_path, catalogue, repo
):
    from harvest.reparse import reparse

    _, url = repo
    report = crawl(catalogue, "git", base_url=url, limit=1, options={"cache_dir": tmp_path / "cache"})
    assert report.added == 1 and len(programs(catalogue)) == 1
    with pytest.raises(ImageProgramsError, match="nothing to reparse") as err:
        reparse(catalogue, "git")
    assert "harvest crawl git" in err.value.hint


def flat_record(n: int) -> dict:
    """A flattened Shadertoy record, as the public shadertoys dataset keeps them a line each."""
    code = f"void mainImage(out vec4 c, in vec2 p){{ c = vec4(p / iResolution.xy, 0.{n}, 1.0); }}\n"
    return {
        "id": f"ds{n:04d}",
        "name": f"dump {n}",
        "author": "someone",
        "image_code": code,
        "license": "MIT",
    }


def write_dump(path: Path, numbers, compress=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(flat_record(n)) + "\n" for n in numbers).encode()
    path.write_bytes(compress(data) if compress else data)


def test_a_repository_of_dumps_is_imported_and_a_recrawl_picks_up_the_dump_added_since(tmp_path, catalogue):
    import gzip

    work = tmp_path / "dataset"
    write_dump(work / "data" / "annotated" / "20k_2014-03.jsonl", range(0, 4))
    (work / "data" / "annotated" / "schema.json").write_text('{"fields": ["id", "name"]}')  # not a dump
    (work / "shaders" / "waves.frag").parent.mkdir()
    (work / "shaders" / "waves.frag").write_text(WAVES)
    url, options = published(work, "dataset", "a first month"), {"cache_dir": tmp_path / "cache"}

    first = crawl(catalogue, "git", base_url=url, options=options)
    assert (first.added, first.parse_errors) == (5, 0)  # four dump records and the shader file
    assert any("schema.json: not a dump" in s for s in first.skipped)
    commit = git(work, "rev-parse", "HEAD")
    record = show_program(catalogue, "shadertoy:ds0002")
    assert record["passes"][0]["code"] == flat_record(2)["image_code"]
    assert record["provenance"][0]["via"] == "crawl:git"
    assert record["provenance"][0]["location"] == f"{url}@{commit}!data/annotated/20k_2014-03.jsonl:3"

    write_dump(work / "data" / "annotated" / "api" / "api_2020-01.jsonl.gz", range(4, 7), gzip.compress)
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", "the API months, compressed")
    git(work, "push", "--quiet", "origin", "main")

    second = crawl(catalogue, "git", base_url=url, options=options)
    assert (second.added, second.updated) == (3, 0)
    assert second.unchanged == 1  # the shader file, read again; the first dump is not read again
    assert sorted(i for i in programs(catalogue) if i.startswith("ds")) == [f"ds{n:04d}" for n in range(7)]


def test_a_cache_dir_under_a_file_is_a_usage_error_before_any_clone(tmp_path, repo, capsys):
    from corpus.cliutils import run_app
    from harvest.cli import app

    _, url = repo
    (tmp_path / "afile").write_text("x")
    cache = tmp_path / "afile" / "cache"
    args = ["crawl", "git", "--base-url", url, "--db", str(tmp_path / "c.db"), "--cache-dir", str(cache)]
    assert run_app(app, "harvest", args) == 2
    err = capsys.readouterr().err
    assert (
        err.splitlines()[0]
        == f"error: --cache-dir {cache} cannot be a folder: {tmp_path / 'afile'} is a file"
    )
    assert err.splitlines()[1].startswith("hint: choose another --cache-dir")
