"""Linear probe and evaluation data: ImageFolder dirs, Fashion-MNIST, few-shot, random init."""

from __future__ import annotations

import contextlib
import gzip
from pathlib import Path

import pytest
import torch

from corpus.errors import InputFormatError, NotFoundError, UsageProblem
from pretrain.checkpoint import save_checkpoint
from pretrain.evaldata import load_fashion_mnist, load_image_folder
from pretrain.linear import select_indices
from pretrain.methods import build_method
from pretrain.models import build_backbone
from pretrain.probe import extract_features, probe, probe_checkpoint
from pretrain.protocol import WEIGHT_DECAYS
from tests.pretrain.helpers import needs_fashion_mnist, write_image_folder
from tests.pretrain.synthetic import one_thread


def new_encoder(arch: str = "alexnet_small", seed: int = 0) -> tuple[torch.nn.Module, int]:
    torch.manual_seed(seed)
    return build_backbone(arch)


def test_image_folder_holds_out_a_fixed_fifth_of_each_class(tmp_path: Path) -> None:
    data = load_image_folder(write_image_folder(tmp_path / "colours"))
    assert data.train.classes == ("blue", "green", "red") and data.num_classes == 3
    assert len(data.train) == 24 and len(data.test) == 6
    assert torch.bincount(data.test.labels).tolist() == [2, 2, 2]
    again = load_image_folder(tmp_path / "colours")
    assert again.test.paths == data.test.paths
    assert not set(data.test.paths) & set(data.train.paths)
    batch = data.train.images([0, 5], 32)
    assert batch.shape == (2, 3, 32, 32) and batch.min() >= 0 and batch.max() <= 1


def test_image_folder_with_train_and_test_folders_uses_them(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "d" / "train", per_class=3)
    write_image_folder(tmp_path / "d" / "test", per_class=2)
    data = load_image_folder(tmp_path / "d")
    assert (len(data.train), len(data.test)) == (9, 6)
    assert all("test" in p.parts for p in data.test.paths)


def test_bad_image_folders_get_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        load_image_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFormatError, match="two class folders") as info:
        load_image_folder(tmp_path / "empty")
    assert "DIR/CLASS/IMAGE.png" in info.value.hint
    root = write_image_folder(tmp_path / "broken", per_class=2)
    (root / "red" / "000.png").write_bytes(b"not a png")
    data = load_image_folder(root)
    with pytest.raises(InputFormatError, match="cannot read image"):
        for split in (data.train, data.test):
            split.images(range(len(split)), 16)


def test_probe_separates_colours_with_a_random_encoder(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "colours")
    with one_thread():
        encoder, dim = new_encoder()
        result = probe(encoder, dim, root, size=32, epochs=50)
        again = probe(encoder, dim, root, size=32, epochs=50)
    assert result["accuracy"] == 1.0
    assert (result["n_train"], result["n_test"], result["num_classes"]) == (24, 6, 3)
    assert result["weight_decay"] in (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
    assert again["accuracy"] == result["accuracy"] and again["weight_decay"] == result["weight_decay"]
    assert encoder.training  # the probe put the encoder back as it found it


def test_few_shot_picks_n_per_class_deterministically_by_seed() -> None:
    labels = torch.arange(5).repeat(20)
    a = select_indices(labels, few_shot=3, seed=1)
    assert torch.bincount(labels[a]).tolist() == [3] * 5
    assert torch.equal(a, select_indices(labels, few_shot=3, seed=1))
    assert not torch.equal(a, select_indices(labels, few_shot=3, seed=2))
    assert len(select_indices(labels, max_n=30, seed=0)) == 30
    assert len(select_indices(labels, max_n=None)) == 100
    with pytest.raises(UsageProblem):
        select_indices(labels, few_shot=0)


def test_fashion_mnist_missing_package_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="Fashion-MNIST is not installed") as info:
        load_fashion_mnist(tmp_path)
    assert "apt-get install dataset-fashion-mnist" in info.value.hint


def test_a_truncated_idx_file_is_an_input_format_error(tmp_path: Path) -> None:
    header = bytes([0, 0, 8, 3]) + (10).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    for prefix in ("train", "t10k"):
        with gzip.open(tmp_path / f"{prefix}-images-idx3-ubyte.gz", "wb") as fh:
            fh.write(header + bytes(100))
        with gzip.open(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", "wb") as fh:
            fh.write(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + bytes(10))
    with pytest.raises(InputFormatError, match="header promises 7840"):
        load_fashion_mnist(tmp_path)


@needs_fashion_mnist
def test_fashion_mnist_reads_from_the_debian_package() -> None:
    data = load_fashion_mnist()
    assert (len(data.train), len(data.test)) == (60_000, 10_000)
    assert data.train.arrays.shape == (60_000, 28, 28)
    assert torch.bincount(data.test.labels).tolist() == [1000] * 10
    x = data.test.images([0, 1], 32)
    assert x.shape == (2, 3, 32, 32) and torch.equal(x[:, 0], x[:, 1])


def tiny_checkpoint(path: Path, arch: str = "alexnet_small", seed: int = 3, step: int = 5) -> Path:
    encoder, dim = new_encoder(arch, seed=seed)
    method = build_method("supervised", encoder, dim, 4)
    config = {"arch": arch, "size": 32}
    save_checkpoint(path, config=config, step=step, method=method, optimizer=None, manifest_sha256="0" * 64)
    return path


def test_probe_checkpoint_runs_the_protocol_on_it_and_its_random_init_baseline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_image_folder(tmp_path / "colours")
    ckpt = tiny_checkpoint(tmp_path / "c.pt")
    forwards = []

    def counting(stages, split, indices, size, **options):
        forwards.append((len(stages.layers), split.name, len(indices), size))
        return extract_features(stages, split, indices, size, **options)

    options = {"seeds": 3, "few_shot": (1, 2), "knn_k": 3, "epochs": 20, "size": 16}
    monkeypatch.setattr("pretrain.probe.extract_features", counting)
    with one_thread():
        report = probe_checkpoint(ckpt, root, layers=("last", "conv2"), **options)
    # features once per model and split, every layer in the same pass, whatever the seeds and probes
    assert forwards == [(2, "train", 24, 16), (2, "test", 6, 16)] * 2
    assert list(report["models"]) == list(report["results"]) == ["checkpoint", "random-init"]
    ours, base = report["models"]["checkpoint"], report["models"]["random-init"]
    assert (ours["arch"], ours["step"], ours["random_init"], ours["checkpoint"]) == (
        "alexnet_small",
        5,
        False,
        str(ckpt),
    )
    assert (base["arch"], base["step"], base["random_init"]) == ("alexnet_small", 0, True)
    assert ours["layers"] == base["layers"] == {"conv5": 256, "conv2": 64}
    assert report["protocol"]["default"] is False and report["protocol"]["seeds"] == 3
    assert (report["n_train"], report["n_test"], report["num_classes"]) == (24, 6, 3)
    for name in ("checkpoint", "random-init"):
        assert list(report["results"][name]) == ["conv5", "conv2"]
        probes = report["results"][name]["conv5"]
        assert list(probes) == ["linear", "1-shot", "2-shot", "knn"]
        assert len(probes["1-shot"]["accuracies"]) == 3 and probes["2-shot"]["n_train"] == 6
        assert len(probes["linear"]["accuracies"]) == 1 and probes["linear"]["n_train"] == 24
        assert probes["linear"]["mean"] == 1.0  # flat colours are linearly separable
    gain = report["gain"]["conv5"]["1-shot"]
    ours_1, base_1 = (
        report["results"][n]["conv5"]["1-shot"]["accuracies"] for n in ("checkpoint", "random-init")
    )
    assert gain["differences"] == pytest.approx(
        [a - b for a, b in zip(ours_1, base_1, strict=True)], abs=1e-6
    )
    # the same call again gives the same figures: subsets, hold-outs and the baseline's weights are seeded
    with one_thread():
        again = probe_checkpoint(ckpt, root, layers=("last", "conv2"), **options)
    assert again["results"] == report["results"]


def test_the_baseline_is_the_checkpoint_s_architecture_or_none(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "colours", per_class=5)
    ckpt = tiny_checkpoint(tmp_path / "c.pt")
    options = {"seeds": 1, "few_shot": (), "epochs": 5, "size": 16}
    with one_thread():
        alone = probe_checkpoint(ckpt, root, baseline="none", **options)
        baseline = probe_checkpoint(ckpt, root, random_init=True, **options)
    assert list(alone["models"]) == ["checkpoint"] and "gain" not in alone
    assert (
        list(baseline["models"]) == ["random-init"]
        and baseline["models"]["random-init"]["arch"] == "alexnet_small"
    )
    with pytest.raises(UsageProblem, match="is a alexnet_small, not a resnet18"):
        probe_checkpoint(ckpt, root, arch="resnet18", **options)
    with pytest.raises(UsageProblem, match="unknown baseline 'imagenet'") as info:
        probe_checkpoint(ckpt, root, baseline="imagenet", **options)
    assert info.value.hint == "choose one of: random-init, none"


@needs_fashion_mnist
def test_probe_checkpoint_on_a_fashion_mnist_subset(tmp_path: Path) -> None:
    ckpt = tiny_checkpoint(tmp_path / "c.pt")
    options = {"max_train": 300, "max_test": 200, "epochs": 30, "seeds": 2, "few_shot": (1,)}
    with one_thread():
        report = probe_checkpoint(ckpt, "fashion-mnist", **options)
    assert report["protocol"]["size"] == 64  # the protocol's size, not the checkpoint's 32
    assert (report["n_train"], report["n_test"]) == (300, 200)
    for name in ("checkpoint", "random-init"):
        assert report["results"][name]["conv5"]["linear"]["mean"] > 0.3  # chance is 0.1
        assert report["results"][name]["conv5"]["1-shot"]["n_train"] == 10


def test_probe_needs_something_to_probe() -> None:
    with pytest.raises(UsageProblem, match="nothing to probe"):
        probe_checkpoint(None, "fashion-mnist")
    with pytest.raises(UsageProblem, match="needs an architecture"):
        probe_checkpoint(None, "fashion-mnist", random_init=True)
    encoder, dim = new_encoder()
    with pytest.raises(UsageProblem, match="unknown dataset"):
        probe(encoder, dim, "imagenet", size=32)


class Recorder:
    """A stand-in for corpus.cliutils.progress that keeps each phase's total and advances."""

    def __init__(self) -> None:
        self.phases: dict[str, list] = {}

    @contextlib.contextmanager
    def __call__(self, description: str, total: int | None = None):
        steps: list[int] = []
        self.phases[description] = [total, steps]
        yield steps.append


def test_probe_reports_feature_extraction_and_fitting_through_progress(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "colours")
    recorder = Recorder()
    with one_thread():
        encoder, dim = new_encoder()
        result = probe(encoder, dim, root, size=16, epochs=10, batch_size=8, progress=recorder)
    images = result["n_train"] + result["n_test"]
    assert recorder.phases["probe: features"] == [images, [8, 8, 8, 6]]  # 24 train in 3, 6 test in 1
    total, fits = recorder.phases["probe: fitting"]
    assert total == sum(fits) == 1 + len(WEIGHT_DECAYS)  # a fit per candidate decay, then the final one
