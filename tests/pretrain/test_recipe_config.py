"""configs/cpu-quick.toml, the CPU recipe the README and docs/scale.md run, is a valid config."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pretrain.config import TrainConfig, augment_of, peak_lr, weight_decay_of

RECIPE = Path(__file__).resolve().parents[2] / "configs" / "cpu-quick.toml"


def test_the_recipe_loads_as_a_train_config_and_options_override_it() -> None:
    keys = tomllib.loads(RECIPE.read_text())
    config = TrainConfig.load(RECIPE, snapshot="some/snapshot")
    assert config.arch == "resnet18"  # the network
    assert all(getattr(config, key) == value for key, value in keys.items())
    assert TrainConfig.load(RECIPE, snapshot="s", size=128, steps=5).size == 128


def test_the_defaults_of_pretrain_train_are_the_recipe() -> None:
    """Issue 13.2: `pretrain train --snapshot S` with no other option trains the recipe."""
    keys = tomllib.loads(RECIPE.read_text())
    defaults = TrainConfig(snapshot="s")
    recipe = TrainConfig.load(RECIPE, snapshot="s")
    assert (augment_of(defaults), weight_decay_of(defaults), peak_lr(defaults)) == (
        keys["augment"],
        keys["weight_decay"],
        keys["lr"],
    )
    resolved = {"augment": augment_of(recipe), "weight_decay": weight_decay_of(recipe), "lr": peak_lr(recipe)}
    assert all(getattr(defaults, k) == v for k, v in keys.items() if k not in resolved)


def test_auto_settings_resolve_by_method_and_optimizer_and_old_runs_keep_theirs() -> None:
    assert augment_of(TrainConfig(snapshot="s", method="simclr")) == "gray"
    assert augment_of(TrainConfig(snapshot="s", method="supervised")) == "light"
    # a run config written before "auto" holds "": a resume keeps the preset it trained with
    assert augment_of(TrainConfig(snapshot="s", method="supcon", augment="")) == "simclr"
    assert augment_of(TrainConfig(snapshot="s", augment="none")) == "none"
    assert weight_decay_of(TrainConfig(snapshot="s", optimizer="sgd")) == 1e-4
    assert weight_decay_of(TrainConfig(snapshot="s", optimizer="sgd", weight_decay=0.0)) == 0.0
    assert weight_decay_of(TrainConfig(snapshot="s")) == 0.05
    # the dicts checkpoints and run folders hold: a key an older one lacks reads as its default
    assert weight_decay_of({"optimizer": "sgd", "weight_decay": -1}) == 1e-4
    assert (weight_decay_of({"optimizer": "adamw"}), augment_of({"method": "simclr"})) == (0.05, "gray")
    assert augment_of({"method": "mocov2", "augment": ""}) == "simclr"
    # one rule for every setting read from such a dict: the rate and the decay of the same optimizer
    assert (peak_lr({"batch_size": 64}), weight_decay_of({"batch_size": 64})) == (1e-3, 0.05)
    assert peak_lr({"optimizer": "sgd", "batch_size": 64}, world_size=2) == 0.05
