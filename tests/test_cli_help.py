"""Every command of the four console scripts explains itself and fails in one clear line."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
import typer

import corpus.cli
import harvest.cli
import pretrain.cli
import render.cli
from corpus.cliutils import run_app

APPS = {
    "corpus": corpus.cli.app,
    "harvest": harvest.cli.app,
    "render": render.cli.app,
    "pretrain": pretrain.cli.app,
}


def _leaf_commands(name: str, app: typer.Typer) -> list[list[str]]:
    paths: list[list[str]] = []

    def walk(cmd: click.Command, path: list[str]) -> None:
        if isinstance(cmd, click.Group):
            for sub_name, sub in cmd.commands.items():
                walk(sub, [*path, sub_name])
        else:
            paths.append(path)

    walk(typer.main.get_command(app), [name])
    return paths


ALL_COMMANDS = [path for name, app in APPS.items() for path in _leaf_commands(name, app)]


def test_the_walk_finds_the_commands_users_learn_first():
    names = {" ".join(p) for p in ALL_COMMANDS}
    assert {
        "harvest import",
        "corpus ls",
        "corpus show",
        "corpus snapshot create",
        "corpus db upgrade",
    } <= names


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=[" ".join(p) for p in ALL_COMMANDS])
def test_every_command_help_has_an_example(path, capsys):
    name, *args = path
    assert run_app(APPS[name], name, [*args, "--help"]) == 0
    out = capsys.readouterr().out
    assert "Example:" in out, f"{' '.join(path)} --help has no example"


@pytest.mark.parametrize("name", list(APPS))
def test_version_flag(name, capsys):
    assert run_app(APPS[name], name, ["--version"]) == 0
    assert "imageprograms" in capsys.readouterr().out


def test_wrong_option_is_an_error_line_and_a_hint_not_a_traceback(capsys):
    assert run_app(corpus.cli.app, "corpus", ["ls", "--no-such-option"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2
    assert err[0].startswith("error: No such option")
    assert "--no-such-option" in err[0]
    assert err[1] == "hint: see: corpus ls --help"


def test_missing_catalogue_is_one_clear_line_from_a_real_process(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "corpus.cli", "ls", "--db", str(tmp_path / "missing.db")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 3
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[0] == f"error: no catalogue at {tmp_path / 'missing.db'}"
    assert lines[1].startswith("hint: ")
    assert not (tmp_path / "missing.db").exists()


def test_a_bare_group_prints_help_and_a_typo_gets_one_suggestion(capsys):
    assert run_app(corpus.cli.app, "corpus", []) == 0
    assert "Commands" in capsys.readouterr().out
    assert run_app(corpus.cli.app, "corpus", ["lss"]) == 2
    err = capsys.readouterr().err
    assert err.count("Did you mean 'ls'?") == 1


def test_a_database_url_without_its_driver_is_one_clear_error(capsys):
    assert run_app(corpus.cli.app, "corpus", ["stats", "--db", "nosuchdriver+nothing://u@localhost/x"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err


def test_help_paragraphs_are_wrapped_to_the_terminal_and_brackets_survive(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert run_app(APPS["corpus"], "corpus", ["licence", "--help"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # one line at 200 columns: the docstring's own line break (after "needs") is gone
    assert any(
        "comments (needs pip install 'imageprograms[scancode]'); nothing is written" in x for x in lines
    )
    assert run_app(APPS["corpus"], "corpus", ["exclusions", "--help"]) == 0
    assert "(corpus exclusions [--json])" in capsys.readouterr().out
