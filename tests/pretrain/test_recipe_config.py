"""configs/cpu-quick.toml, the CPU recipe the README and docs/scale.md run, is a valid config."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pretrain.config import TrainConfig

RECIPE = Path(__file__).resolve().parents[2] / "configs" / "cpu-quick.toml"


def test_the_recipe_loads_as_a_train_config_and_options_override_it() -> None:
    keys = tomllib.loads(RECIPE.read_text())
    config = TrainConfig.load(RECIPE, snapshot="some/snapshot")
    assert config.arch == "resnet18"  # the network
    assert all(getattr(config, key) == value for key, value in keys.items())
    assert TrainConfig.load(RECIPE, snapshot="s", size=128, steps=5).size == 128
