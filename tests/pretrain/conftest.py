"""Pretraining fixtures: small exported snapshots of shaders written for these tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pretrain.helpers import BROKEN, SHADERS, make_snapshot


@pytest.fixture(scope="session")
def snapshot_dir(tmp_path_factory) -> Path:
    return make_snapshot(tmp_path_factory.mktemp("snap"), SHADERS)


@pytest.fixture(scope="session")
def snapshot_with_broken(tmp_path_factory) -> Path:
    return make_snapshot(tmp_path_factory.mktemp("snapb"), {**SHADERS, "tBroken": BROKEN}, name="b")
