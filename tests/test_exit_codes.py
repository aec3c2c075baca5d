"""One table of exit codes: every code a command uses is an ExitCode, and the README lists them all."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import pytest
import typer

from corpus.cliutils import new_app, run_app
from corpus.errors import ExitCode, ImageProgramsError, UsageProblem

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("corpus", "harvest", "render", "pretrain")


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        names.append(package)
        path = [str(ROOT / package)]
        names += [m.name for m in pkgutil.walk_packages(path, prefix=f"{package}.")]
    return names


def _error_classes() -> set[type[ImageProgramsError]]:
    for name in _modules():
        importlib.import_module(name)
    found, todo = set(), [ImageProgramsError]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo += cls.__subclasses__()
    return {cls for cls in found if cls.__module__.split(".")[0] in PACKAGES}


def test_every_error_class_exits_with_a_code_from_the_table():
    classes = _error_classes()
    assert len(classes) > 10  # the four packages' trees were found
    for cls in classes:
        assert isinstance(cls.exit_code, ExitCode), f"{cls.__module__}.{cls.__name__}: {cls.exit_code!r}"


def test_no_command_exits_with_a_bare_number():
    """``typer.Exit(4)`` hides what 4 means; every explicit exit names its ExitCode."""
    offenders = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "Exit":
                    if any(isinstance(arg, ast.Constant) and arg.value for arg in node.args):
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_the_readme_table_lists_every_exit_code_and_no_other():
    readme = (ROOT / "README.md").read_text()
    listed = {int(code) for code in re.findall(r"^\| (\d+) \| ", readme, flags=re.M)}
    assert listed == {int(code) for code in ExitCode}


def _failing_app(error: Exception) -> typer.Typer:
    app = new_app("demo", "A demo app.")

    @app.command("go")
    def go() -> None:
        raise error

    return app


@pytest.mark.parametrize("code", [c for c in ExitCode if c not in (ExitCode.OK, ExitCode.BUG)])
def test_an_error_without_its_own_hint_gets_its_codes_hint(code, capsys):
    error = ImageProgramsError("it broke")
    error.exit_code = code
    assert run_app(_failing_app(error), "demo", ["go"]) == code
    assert capsys.readouterr().err.splitlines() == ["error: it broke", f"hint: {code.hint}"]


def test_an_errors_own_hint_wins(capsys):
    assert run_app(_failing_app(UsageProblem("bad value", hint="use 3")), "demo", ["go"]) == 2
    assert capsys.readouterr().err.splitlines() == ["error: bad value", "hint: use 3"]


def test_ctrl_c_in_a_command_says_it_was_interrupted_and_what_to_do(capsys):
    # Typer turns a KeyboardInterrupt into a silent exit 130; the runner must still say so.
    assert run_app(_failing_app(KeyboardInterrupt()), "demo", ["go"]) == ExitCode.INTERRUPTED
    assert capsys.readouterr().err.splitlines() == [
        "error: interrupted (Ctrl-C); what was committed so far is kept",
        f"hint: {ExitCode.INTERRUPTED.hint}",
    ]
