"""What pretrain writes for use elsewhere, read by the readers people use: torchvision loads the
exported weights, webdataset reads the shards, Hugging Face datasets reads the image folder; and
the model card and attribution that ship with the weights."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from corpus.errors import NotFoundError, SnapshotError, UsageProblem
from pretrain.checkpoint import save_checkpoint
from pretrain.config import TrainConfig
from pretrain.export import _licence_table, export_model
from pretrain.methods import build_method
from pretrain.models import build_backbone
from pretrain.snapshot import open_snapshot
from pretrain.static import DatasetJob, build_dataset
from tests.pretrain.helpers import SHADERS, import_torchvision, make_snapshot
from tests.pretrain.synthetic import one_thread


def write_checkpoint(snapshot_dir: Path, path: Path, arch: str = "resnet18") -> torch.nn.Module:
    """A checkpoint of ``arch`` as `pretrain train` writes one, trained on ``snapshot_dir``, with
    BatchNorm statistics that are not their initial values; returns its encoder."""
    snap = open_snapshot(snapshot_dir)
    torch.manual_seed(0)
    backbone, dim = build_backbone(arch)
    with torch.no_grad(), one_thread():
        backbone.train()(torch.rand(4, 3, 32, 32))
    method = build_method("supervised", backbone, dim, len(snap))
    config = TrainConfig(
        snapshot=str(snapshot_dir), arch=arch, method="supervised", steps=10, optimizer="sgd"
    ).to_json()
    save_checkpoint(
        path,
        config=config,
        step=10,
        method=method,
        optimizer=None,
        manifest_sha256=snap.manifest_sha256,
        extra={"snapshot": snap.name},
    )
    return backbone.eval()


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_torchvision_resnets_load_the_exported_weights_and_give_the_same_features(
    snapshot_dir, tmp_path, arch
):
    torchvision = import_torchvision()
    encoder = write_checkpoint(snapshot_dir, tmp_path / "ckpt.pt", arch)
    export_model(tmp_path / "ckpt.pt", tmp_path / "tv" / f"{arch}.pt", format="torchvision")
    export_model(tmp_path / "ckpt.pt", tmp_path / "plain" / f"{arch}.pt", format="plain")
    model = getattr(torchvision.models, arch)()
    model.load_state_dict(torch.load(tmp_path / "tv" / f"{arch}.pt", weights_only=True))  # strict
    plain = getattr(torchvision.models, arch)()
    missing, unexpected = plain.load_state_dict(
        torch.load(tmp_path / "plain" / f"{arch}.pt", weights_only=True), strict=False
    )
    assert sorted(missing) == ["fc.bias", "fc.weight"] and unexpected == []
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad(), one_thread():
        ours = encoder(x)
        for tv in (model, plain):
            tv.fc = torch.nn.Identity()
            assert torch.allclose(tv.eval()(x), ours, atol=1e-5)


def test_export_writes_a_model_card_and_the_snapshots_attribution_beside_the_weights(snapshot_dir, tmp_path):
    write_checkpoint(snapshot_dir, tmp_path / "ckpt.pt")
    snap = open_snapshot(snapshot_dir)
    written = export_model(tmp_path / "ckpt.pt", tmp_path / "model" / "r18.pt")
    folder = tmp_path / "model"
    assert sorted(p.name for p in folder.iterdir()) == ["ATTRIBUTION.md", "MODEL_CARD.md", "r18.pt"]
    assert written["card"] == str(folder / "MODEL_CARD.md")
    assert (folder / "ATTRIBUTION.md").read_bytes() == (snapshot_dir / "ATTRIBUTION.md").read_bytes()
    card = (folder / "MODEL_CARD.md").read_text()
    weights_sha = hashlib.sha256((folder / "r18.pt").read_bytes()).hexdigest()
    assert f"**{snap.name}**, manifest sha256 `{snap.manifest_sha256}`" in card
    assert f"sha256 `{weights_sha}`" in card and "torchvision.models.resnet18()" in card
    assert f"| MIT | permissive | {len(SHADERS)} |" in card
    assert "A resnet18 image encoder" in card
    # the config's lr 0 means "the default": the card says which rate that was, not 0.0
    assert "peak learning rate 0.025 (SGD's default: 0.1 × 64 images × 1 rank / 256)" in card, card
    # weight_decay -1 and augment "auto" in the config: the card says what the run used
    assert "weight decay 0.0001, views light," in card, card
    config = json.loads(card.split("```json\n", 1)[1].split("```", 1)[0])
    assert config["arch"] == "resnet18" and config["snapshot"] == str(snapshot_dir)
    assert "limit their use" not in card  # every program here is MIT
    # exported again: its own card is replaced; another model's card is never overwritten
    export_model(tmp_path / "ckpt.pt", folder / "r18.pt")
    with pytest.raises(UsageProblem, match="does not describe other.pt") as caught:
        export_model(tmp_path / "ckpt.pt", folder / "other.pt")
    assert "folder of its own" in caught.value.hint and not (folder / "other.pt").exists()


def test_the_card_needs_the_snapshot_the_encoder_was_trained_on(snapshot_dir, tmp_path):
    moved = make_snapshot(tmp_path / "gone", SHADERS, name="gone")
    write_checkpoint(moved, tmp_path / "ckpt.pt")
    other = make_snapshot(tmp_path / "other", dict(list(SHADERS.items())[:2]), name="other")
    shutil.rmtree(moved)
    with pytest.raises(NotFoundError) as caught:
        export_model(tmp_path / "ckpt.pt", tmp_path / "m" / "r18.pt", db=str(tmp_path / "none.db"))
    assert "--snapshot" in caught.value.hint and not (tmp_path / "m").exists()
    with pytest.raises(SnapshotError, match="not the one this encoder was trained on"):
        export_model(tmp_path / "ckpt.pt", tmp_path / "m" / "r18.pt", snapshot=str(other))
    # the same programs exported again elsewhere: the same manifest, so the card can be written
    again = make_snapshot(tmp_path / "again", SHADERS, name="gone")
    written = export_model(tmp_path / "ckpt.pt", tmp_path / "m" / "r18.pt", snapshot=str(again))
    assert Path(written["card"]).is_file()


def test_webdataset_reads_the_shards_with_their_labels(snapshot_dir, tmp_path):
    wds = pytest.importorskip("webdataset", reason="webdataset is not installed (pip install -e '.[dev]')")
    out = tmp_path / "wds"
    build_dataset(
        DatasetJob(str(snapshot_dir), str(out), per_program=3, size=16, fmt="webdataset", shard_size=5),
        workers=1,
    )
    shards = sorted(str(p) for p in out.glob("shard-*.tar"))
    samples = list(wds.WebDataset(shards, shardshuffle=False).decode("pil").to_tuple("png", "cls", "json"))
    assert len(samples) == 3 * len(SHADERS)
    snap = open_snapshot(snapshot_dir)
    for image, label, meta in samples:
        assert image.size == (16, 16) and image.mode == "RGB"
        assert meta["label"] == label and snap.entries[label]["program"] == meta["program"]
    assert sorted(label for _, label, _ in samples) == sorted(list(range(len(SHADERS))) * 3)


def test_hugging_face_datasets_reads_the_image_folder_with_labels(
    snapshot_with_broken, tmp_path, monkeypatch
):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    datasets = pytest.importorskip("datasets", reason="Hugging Face datasets is not installed")
    out = tmp_path / "if"
    build_dataset(DatasetJob(str(snapshot_with_broken), str(out), per_program=2, size=16), workers=1)
    loaded = datasets.load_dataset("imagefolder", data_dir=str(out), cache_dir=str(tmp_path / "hf"))["train"]
    snap = open_snapshot(snapshot_with_broken)
    assert loaded.num_rows == 2 * len(SHADERS)  # the broken program has no images
    for row in loaded:
        assert row["image"].size == (16, 16)
        assert snap.entries[row["label"]]["program"] == row["program"] != "shadertoy:tBroken"
    assert sorted(set(loaded["label"])) == [
        e["index"] for e in snap.entries if e["program"] != "shadertoy:tBroken"
    ]


def test_the_licence_table_counts_each_licence_and_warns_of_those_that_limit_use():
    entries = [
        {"licence_spdx": "MIT", "licence_class": "permissive"},
        {"licence_spdx": "CC-BY-NC-SA-3.0", "licence_class": "noncommercial"},
        {"licence_spdx": "CC-BY-NC-SA-3.0", "licence_class": "noncommercial"},
        {"licence_spdx": None, "licence_class": "unknown"},
    ]
    text = "\n".join(_licence_table(entries))
    assert "| CC-BY-NC-SA-3.0 | noncommercial | 2 |" in text and "| NOASSERTION | unknown | 1 |" in text
    assert "3 of 4 programs are under licences that limit their use (noncommercial 2, unknown 1" in text


def test_the_card_names_an_alexnet_with_an_and_a_given_learning_rate_as_given(snapshot_dir, tmp_path):
    write_checkpoint(snapshot_dir, tmp_path / "ckpt.pt", arch="alexnet_small")
    ckpt = torch.load(tmp_path / "ckpt.pt", weights_only=False)
    ckpt["config"].update(lr=0.03, optimizer="adamw")
    torch.save(ckpt, tmp_path / "ckpt.pt")
    card = Path(export_model(tmp_path / "ckpt.pt", tmp_path / "m" / "a.pt")["card"]).read_text()
    assert "An alexnet_small image encoder" in card and "A alexnet_small" not in card
    assert "peak learning rate 0.03," in card
    assert "weight decay 0.05, views light," in card  # AdamW's default decay
