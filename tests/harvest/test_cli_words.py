"""What harvest says about itself is current: no "soon", "later" or "next" for what exists."""

from __future__ import annotations

import ast
import re

from corpus.cliutils import run_app
from harvest.cli import app
from tests.conftest import ROOT

STALE = re.compile(
    r"(?<!as )\bsoon\b|\(later\b|, later,|\bgroundwork\b|crawlers? (?:come )?next|issue \d+", re.I
)


def test_harvest_help_names_import_and_crawl_as_they_are(capsys):
    assert run_app(app, "harvest", ["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "polite crawls of sites and git repositories (crawl)" in text
    assert not STALE.search(text)


def test_no_harvest_docstring_promises_what_already_exists():
    stale = []
    for path in sorted((ROOT / "harvest").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef))]
        for node in nodes:
            doc = ast.get_docstring(node) or ""
            stale += [f"{path.relative_to(ROOT)}: {m.group(0)!r}" for m in STALE.finditer(doc)]
    assert stale == []
