"""Render fixtures: one real OpenGL context (EGL; llvmpipe on a CPU machine) for the whole session,
and the bundled examples as render programs."""

from __future__ import annotations

import json

import pytest

from harvest.importers import read_records
from render.engine import Engine
from render.program import RenderPassSource, RenderProgram
from tests.conftest import EXAMPLES

EXAMPLE_PATHS = ("shaders21k", "shadertoys.jsonl", "glslsandbox.jsonl", "gl-transitions.json", "repo")


@pytest.fixture(scope="session")
def engine() -> Engine:
    eng = Engine()
    yield eng
    eng.release()


def as_render_program(record) -> RenderProgram:
    return RenderProgram(
        f"{record.source}:{record.external_id}",
        record.dialect,
        tuple(
            RenderPassSource(p.name, p.type, p.code, tuple(i.to_json() for i in p.inputs))
            for p in record.passes
        ),
        record.code_sha256,
    )


@pytest.fixture(scope="session")
def example_programs() -> dict[str, RenderProgram]:
    programs = {}
    for name in EXAMPLE_PATHS:
        for record in read_records(EXAMPLES / name):
            program = as_render_program(record)
            programs[program.key] = program
    return programs


@pytest.fixture(scope="session")
def expected() -> dict[str, dict]:
    """examples/expected.json: what each bundled program was written to do."""
    return json.loads((EXAMPLES / "expected.json").read_text())


def expected_ok(expected: dict[str, dict]) -> int:
    """How many bundled programs should validate ``ok`` (those reading textures get stand-ins)."""
    return sum(1 for want in expected.values() if want["expect"] in ("ok", "texture"))
