"""Checkpoints: what they hold, atomic writes, clear errors, compatibility checks and export."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

from corpus.errors import ImageProgramsError, NotFoundError, UsageProblem
from pretrain.checkpoint import (
    FORMAT,
    CheckpointError,
    check_compatible,
    load_checkpoint,
    load_encoder,
    save_checkpoint,
    write_encoder,
)
from pretrain.methods import build_method
from pretrain.models import build_backbone
from tests.pretrain.synthetic import make_batch, one_thread

SHA = "ab" * 32


def trained(arch: str = "alexnet_small", method_name: str = "mocov2"):
    """A method after one optimizer step, so optimizer state and BN statistics are non-trivial."""
    torch.manual_seed(0)
    backbone, dim = build_backbone(arch)
    method = build_method(
        method_name, backbone, dim, 4, **({"queue_size": 16} if method_name == "mocov2" else {})
    )
    opt = torch.optim.AdamW([p for p in method.parameters() if p.requires_grad], lr=1e-3)
    with one_thread():
        loss, _ = method(make_batch(torch.Generator().manual_seed(0), n=4))
        loss.backward()
        opt.step()
    return method, opt


def save(path: Path, arch: str = "alexnet_small", method_name: str = "mocov2", **kw) -> tuple:
    method, opt = trained(arch, method_name)
    config = {"arch": arch, "size": 32, "method": method_name}
    save_checkpoint(path, config=config, step=7, method=method, optimizer=opt, manifest_sha256=SHA, **kw)
    return method, opt


def test_a_checkpoint_holds_config_step_encoder_method_optimizer_and_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "run" / "ckpt.pt"
    rng = {"torch": torch.get_rng_state(), "python": [1, 2, 3]}
    method, opt = save(path, rng=rng, extra={"images_seen": 64})
    ckpt = load_checkpoint(path)
    assert ckpt["format"] == FORMAT and ckpt["arch"] == "alexnet_small" and ckpt["step"] == 7
    assert ckpt["config"]["size"] == 32 and ckpt["manifest_sha256"] == SHA
    assert ckpt["extra"] == {"images_seen": 64} and torch.equal(ckpt["rng"]["torch"], rng["torch"])
    assert ckpt["scaler"] is None
    assert set(ckpt["encoder"]) == set(method.backbone.state_dict())
    assert {"queue", "queue_ptr"} <= set(ckpt["method"])
    fresh, fresh_opt = trained()
    fresh.load_state_dict(ckpt["method"])
    fresh_opt.load_state_dict(ckpt["optimizer"])
    assert torch.equal(fresh.queue, method.queue)
    assert list(tmp_path.joinpath("run").iterdir()) == [path]  # no temporary files left behind


def test_load_encoder_gives_the_trained_encoder_in_eval_mode(tmp_path: Path) -> None:
    method, _ = save(tmp_path / "c.pt")
    encoder, dim, config = load_encoder(tmp_path / "c.pt")
    assert dim == 256 and config["arch"] == "alexnet_small" and not encoder.training
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(encoder(x), method.backbone.eval()(x))


def test_a_ddp_wrapped_method_is_saved_unwrapped(tmp_path: Path) -> None:
    method, opt = trained(method_name="supervised")

    class Wrapper(torch.nn.Module):  # stands in for DistributedDataParallel's .module
        def __init__(self, module: torch.nn.Module) -> None:
            super().__init__()
            self.module = module

    save_checkpoint(
        tmp_path / "c.pt",
        config={"arch": "alexnet_small"},
        step=1,
        method=Wrapper(method),
        optimizer=opt,
        manifest_sha256=SHA,
    )
    assert set(load_checkpoint(tmp_path / "c.pt")["method"]) == set(method.state_dict())


def test_a_failed_save_leaves_the_previous_checkpoint_intact(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    method, opt = save(path)
    before = path.read_bytes()
    with pytest.raises(Exception):  # noqa: B017 - whatever pickling raises for a lambda
        save_checkpoint(
            path,
            config={"arch": "alexnet_small"},
            step=8,
            method=method,
            optimizer=opt,
            manifest_sha256=SHA,
            extra={"bad": lambda: 0},
        )
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_a_missing_checkpoint_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no checkpoint at") as info:
        load_checkpoint(tmp_path / "nope.pt")
    assert "pretrain train" in info.value.hint


@pytest.mark.parametrize(
    "content",
    [b"not a checkpoint at all", b"PK\x03\x04truncated zip"],
    ids=["text", "truncated"],
)
def test_a_file_that_is_not_a_torch_checkpoint_is_refused_clearly(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "c.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a checkpoint written by `pretrain train`"):
        load_checkpoint(path)


def test_another_programs_torch_file_is_not_a_checkpoint_of_ours(tmp_path: Path) -> None:
    backbone, _ = build_backbone("alexnet_small")
    torch.save(backbone.state_dict(), tmp_path / "weights.pt")
    with pytest.raises(CheckpointError, match="not a checkpoint of ours") as info:
        load_checkpoint(tmp_path / "weights.pt")
    assert isinstance(info.value, ImageProgramsError) and info.value.hint


def test_an_unknown_architecture_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    save(tmp_path / "c.pt")
    ckpt = torch.load(tmp_path / "c.pt", weights_only=True)
    ckpt["arch"] = "vit_b16"
    torch.save(ckpt, tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match="unknown architecture 'vit_b16'") as info:
        load_checkpoint(tmp_path / "c.pt")
    assert "resnet18" in info.value.hint


def test_resuming_needs_the_same_architecture_and_snapshot(tmp_path: Path) -> None:
    save(tmp_path / "c.pt")
    ckpt = load_checkpoint(tmp_path / "c.pt")
    check_compatible(ckpt, arch="alexnet_small", manifest_sha256=SHA)
    with pytest.raises(CheckpointError, match="arch alexnet_small, this run trains resnet18") as info:
        check_compatible(ckpt, arch="resnet18", manifest_sha256=SHA)
    assert "--arch alexnet_small" in info.value.hint
    with pytest.raises(CheckpointError, match="another snapshot") as info:
        check_compatible(ckpt, arch="alexnet_small", manifest_sha256="cd" * 32)
    assert "new --out" in info.value.hint


def test_export_of_a_resnet_is_a_torchvision_state_dict(tmp_path: Path) -> None:
    method, _ = save(tmp_path / "c.pt", arch="resnet18", method_name="supervised")
    info = write_encoder(load_checkpoint(tmp_path / "c.pt"), tmp_path / "out" / "resnet18.pt")
    state = torch.load(tmp_path / "out" / "resnet18.pt", weights_only=True)
    assert info["format"] == "torchvision" and info["arch"] == "resnet18" and info["keys"] == 122
    assert state["fc.weight"].shape == (1000, 512)
    assert torch.equal(state["layer1.0.conv1.weight"], method.backbone.state_dict()["layer1.0.conv1.weight"])


def test_export_of_alexnet_small_writes_its_plain_state_dict_with_a_note(tmp_path: Path) -> None:
    method, _ = save(tmp_path / "c.pt")
    info = write_encoder(load_checkpoint(tmp_path / "c.pt"), tmp_path / "a.pt")
    assert info["format"] == "plain" and "torchvision has no alexnet_small" in info["note"]
    backbone, _ = build_backbone("alexnet_small")
    backbone.load_state_dict(torch.load(tmp_path / "a.pt", weights_only=True))
    with pytest.raises(UsageProblem, match="torchvision has no alexnet_small"):
        write_encoder(load_checkpoint(tmp_path / "c.pt"), tmp_path / "b.pt", format="torchvision")
    assert not (tmp_path / "b.pt").exists()


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_checkpoints_and_exports_get_the_mode_the_umask_gives(tmp_path: Path, umask: int, mode: int) -> None:
    before = os.umask(umask)
    try:
        save(tmp_path / "c.pt")
        write_encoder(load_checkpoint(tmp_path / "c.pt"), tmp_path / "e.pt")
    finally:
        os.umask(before)
    assert stat.S_IMODE((tmp_path / "c.pt").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "e.pt").stat().st_mode) == mode
