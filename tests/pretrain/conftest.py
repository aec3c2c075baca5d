"""Pretraining fixtures: a small exported snapshot of shaders written for these tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpus.db import open_catalogue
from corpus.snapshots import create_snapshot, export_snapshot
from corpus.store import ProgramStore
from tests.conftest import make_record

SHADERS = {
    "tGrad": """void mainImage(out vec4 c, in vec2 f) {
    c = vec4(f / iResolution.xy, 0.5 + 0.5 * sin(iTime), 1.0);
}""",
    "tRings": """void mainImage(out vec4 c, in vec2 f) {
    vec2 p = (2.0 * f - iResolution.xy) / iResolution.y;
    c = vec4(0.5 + 0.5 * cos(length(p) * 12.0 - iTime * 3.0 + vec3(0.0, 2.0, 4.0)), 1.0);
}""",
    "tStripes": """void mainImage(out vec4 c, in vec2 f) {
    float s = step(0.5, fract((f.x + f.y) / 12.0 + iTime * 0.4));
    c = vec4(mix(vec3(0.9, 0.2, 0.1), vec3(0.1, 0.3, 0.9), s), 1.0);
}""",
    "tDots": """void mainImage(out vec4 c, in vec2 f) {
    vec2 g = fract(f / 10.0 + vec2(iTime * 0.2, 0.0)) - 0.5;
    c = vec4(vec3(smoothstep(0.3, 0.2, length(g))) * vec3(0.2, 0.9, 0.4), 1.0);
}""",
}
#: Compiles nowhere: a pretraining stream must skip it and count it, never crash.
BROKEN = "void mainImage(out vec4 c, in vec2 f) { c = vec4(1.0) }"


def make_snapshot(root: Path, shaders: dict[str, str], name: str = "s") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    cat = open_catalogue(str(root / "c.db"), create=True)
    store = ProgramStore(cat, via="test")
    records = [make_record(key, code, licence_field="MIT") for key, code in shaders.items()]
    with cat.session() as s:
        store.store(records, s.connection())
    create_snapshot(cat, name, allow=("noncommercial", "unknown", "copyleft", "proprietary"))
    out = root / name
    export_snapshot(cat, name, out)
    cat.close()
    return out


@pytest.fixture(scope="session")
def snapshot_dir(tmp_path_factory) -> Path:
    return make_snapshot(tmp_path_factory.mktemp("snap"), SHADERS)


@pytest.fixture(scope="session")
def snapshot_with_broken(tmp_path_factory) -> Path:
    return make_snapshot(tmp_path_factory.mktemp("snapb"), {**SHADERS, "tBroken": BROKEN}, name="b")
