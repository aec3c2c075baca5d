"""The evaluation protocol on inputs whose answers are known: synthetic features, tiny encoders."""

from __future__ import annotations

import math

import pytest
import torch

from corpus.errors import UsageProblem
from pretrain import linear
from pretrain.evaluation import evaluate_features, gains, knn_accuracy
from pretrain.layers import PooledStages, resolve_layers
from pretrain.linear import select_indices, standardise
from pretrain.models import build_backbone
from pretrain.protocol import PROTOCOL_VERSION, ProbeProtocol, format_report, probe_names
from tests.pretrain.synthetic import one_thread


def clusters(per_class: int, num_classes: int = 3, dim: int = 3, spread: float = 0.1, seed: int = 0):
    """Points around one-hot centres (scaled by 5): linearly separable when ``spread`` is small."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    centres = 5 * torch.eye(num_classes, dim)
    return centres[labels] + spread * torch.randn(labels.shape[0], dim, generator=gen), labels


def test_knn_votes_by_similarity_not_by_count() -> None:
    # One training point of class 0 points the test point's way; two of class 1 are 60 degrees off.
    train_x = torch.tensor([[1.0, 0.0], [0.5, 0.866], [0.5, -0.866]])
    train_y = torch.tensor([0, 1, 1])
    test_x, test_y = torch.tensor([[2.0, 0.0]]), torch.tensor([0])
    # weighted (exp(cos / 0.07)): e^14.3 for class 0 against 2 e^7.1 for class 1
    assert knn_accuracy(train_x, train_y, test_x, test_y, 2, k=3, temperature=0.07) == 1.0
    # a very high temperature makes every vote weigh the same: the majority (class 1) wins
    assert knn_accuracy(train_x, train_y, test_x, test_y, 2, k=3, temperature=1e6) == 0.0
    # k=1 reads the nearest only; a k past the bank's size reads all of it
    assert knn_accuracy(train_x, train_y, test_x, test_y, 2, k=1, temperature=1e6) == 1.0
    assert knn_accuracy(train_x, train_y, test_x, test_y, 2, k=50, temperature=1e6) == 0.0


def test_knn_is_cosine_so_a_feature_vector_s_length_does_not_matter() -> None:
    train_x, train_y = clusters(10)
    test_x, test_y = clusters(5, seed=1)
    scaled = test_x * torch.linspace(0.01, 100, test_x.shape[0])[:, None]
    assert knn_accuracy(train_x, train_y, scaled, test_y, 3, chunk=4) == 1.0


def test_standardise_uses_the_training_statistics_and_leaves_dead_units_at_zero() -> None:
    train = torch.tensor([[1.0, 3.0, 7.0], [3.0, 3.0, 9.0]])
    test = torch.tensor([[2.0, 3.0, 0.0]])
    train_s, test_s = standardise(train, test)
    assert torch.allclose(train_s, torch.tensor([[-1.0, 0.0, -1.0], [1.0, 0.0, 1.0]]))
    assert torch.allclose(test_s, torch.tensor([[0.0, 0.0, -8.0]]))


def small_protocol(**changes) -> ProbeProtocol:
    return ProbeProtocol(**{"few_shot": (1, 4), "seeds": 3, "knn_k": 5, "epochs": 30, **changes})


def test_every_probe_runs_on_the_same_features_with_its_seeds() -> None:
    train_x, train_y = clusters(20)
    test_x, test_y = clusters(10, seed=1)
    runs = []
    with one_thread():
        results = evaluate_features(train_x, train_y, test_x, test_y, 3, small_protocol(), runs.append)
    assert list(results) == probe_names(small_protocol()) == ["linear", "1-shot", "4-shot", "knn"]
    for name, result in results.items():
        assert result["mean"] == 1.0 and result["n_test"] == 30, name  # separable clusters
        assert result["test_stderr"] == 0.0  # an accuracy of 1 has no binomial spread
    assert [results[n]["n_train"] for n in ("linear", "1-shot", "4-shot", "knn")] == [60, 3, 12, 60]
    assert len(results["1-shot"]["accuracies"]) == len(results["4-shot"]["weight_decays"]) == 3
    assert results["1-shot"]["weight_decays"] == [1e-2] * 3  # too few to hold out: the fixed decay
    for whole_pool in ("linear", "knn"):  # the same images whatever the seed: run once
        assert len(results[whole_pool]["accuracies"]) == 1 and results[whole_pool]["std"] == 0.0
    assert len(runs) == 3 * 2 + 2  # a run per seed and few-shot probe, one linear, one k-NN


def test_few_shot_seeds_draw_other_images_and_the_spread_shows_it() -> None:
    # overlapping classes: which single image a class is drawn changes the 1-shot accuracy
    train_x, train_y = clusters(50, spread=3.0)
    test_x, test_y = clusters(50, spread=3.0, seed=1)
    with one_thread():
        result = evaluate_features(train_x, train_y, test_x, test_y, 3, small_protocol(seeds=4))["1-shot"]
    assert len(set(result["accuracies"])) > 1
    values = torch.tensor(result["accuracies"], dtype=torch.float64)
    assert result["std"] == pytest.approx(float(values.std()), abs=1e-6) and result["std"] > 0
    assert result["mean"] == pytest.approx(float(values.mean()), abs=1e-6)
    mean = result["mean"]
    assert result["test_stderr"] == pytest.approx(math.sqrt(mean * (1 - mean) / 150), abs=1e-6)
    picks = [set(select_indices(train_y, few_shot=1, seed=s).tolist()) for s in range(4)]
    assert len({frozenset(p) for p in picks}) == 4


def test_probes_fit_on_one_thread_and_give_the_threads_back(monkeypatch: pytest.MonkeyPatch) -> None:
    threads = []
    fit = linear.fit_linear

    def recording(*args, **kwargs):
        threads.append(torch.get_num_threads())
        return fit(*args, **kwargs)

    monkeypatch.setattr(linear, "fit_linear", recording)
    x, y = clusters(10)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        linear.fit_probe(x, y, 3, max_iter=5)
        assert threads == [1] * (len(linear.WEIGHT_DECAYS) + 1) and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_gain_is_taken_seed_by_seed() -> None:
    ours = {"linear": {"accuracies": [0.8, 0.9]}, "knn": {"accuracies": [0.7]}}
    base = {"linear": {"accuracies": [0.7, 0.7]}, "knn": {"accuracies": [0.75]}}
    result = gains(ours, base)
    assert result["linear"]["differences"] == [0.1, 0.2]
    assert result["linear"]["mean"] == pytest.approx(0.15)
    assert result["linear"]["std"] == pytest.approx(0.0707107, abs=1e-6)
    assert result["knn"] == {"mean": -0.05, "std": 0.0, "differences": [-0.05]}


def test_the_protocol_records_its_constants_and_refuses_nonsense() -> None:
    record = ProbeProtocol().record()
    assert record["version"] == PROTOCOL_VERSION and record["default"] is True
    assert (record["size"], record["max_train"], record["max_test"]) == (64, 10_000, 10_000)
    assert record["few_shot"] == (1, 10, 100) and record["seeds"] == 5 and record["layers"] == ("auto",)
    assert (record["knn_k"], record["knn_temperature"], record["knn_metric"]) == (20, 0.07, "cosine")
    assert ProbeProtocol(few_shot=(100, 1, 10)).record()["default"] is True  # order does not matter
    assert ProbeProtocol(seeds=3).record()["default"] is False
    with pytest.raises(UsageProblem, match="at least 1 is needed") as info:
        ProbeProtocol(seeds=0)
    assert "defaults" in info.value.hint
    for bad in ({"size": 4}, {"few_shot": (0,)}, {"knn_k": 0}, {"max_train": 0}, {"layers": ()}):
        with pytest.raises(UsageProblem):
            ProbeProtocol(**bad)


@pytest.mark.parametrize(("arch", "stages"), [("resnet18", (64, 128, 256, 512)), ("alexnet_small", None)])
def test_the_last_stage_is_the_encoder_s_output_and_earlier_ones_are_pooled(arch, stages) -> None:
    torch.manual_seed(0)
    encoder, dim = build_backbone(arch)
    encoder.eval()
    x = torch.rand(2, 3, 32, 32)
    names = resolve_layers(
        encoder, ["layer1", "layer2", "layer3", "last"] if stages else ["conv1", "conv3", "last"]
    )
    with torch.no_grad():
        out = PooledStages(encoder, names)(x)
        assert torch.allclose(out[names[-1]], encoder(x), atol=1e-5)
    widths = [out[n].shape[1] for n in names]
    assert widths == ([64, 128, 256, 512] if stages else [32, 128, 256]) and widths[-1] == dim


def test_a_probe_of_an_early_stage_stops_the_forward_pass_there() -> None:
    encoder, _ = build_backbone("resnet18")
    ran = []
    for name in ("layer1", "layer2", "layer3", "layer4"):
        getattr(encoder, name).register_forward_hook(lambda m, a, o, name=name: ran.append(name))
    with torch.no_grad():
        out = PooledStages(encoder, ["layer2", "layer1"])(torch.rand(1, 3, 32, 32))
    assert ran == ["layer1", "layer2"] and list(out) == ["layer2", "layer1"]
    # its hooks are gone: only the counters remain
    assert [len(getattr(encoder, n)._forward_hooks) for n in ("layer1", "layer2")] == [1, 1]


def test_an_unknown_layer_is_a_usage_error_that_lists_the_known_ones() -> None:
    encoder, _ = build_backbone("alexnet_small")
    with pytest.raises(UsageProblem, match="alexnet_small has no layer 'layer4'") as info:
        resolve_layers(encoder, ["layer4"])
    assert info.value.hint == "choose one of: auto, last, conv1, conv2, conv3, conv4, conv5"
    assert resolve_layers(encoder, ["last", "conv5", "conv2"]) == ("conv5", "conv2")


def test_auto_reads_layer2_of_a_resnet_and_the_last_stage_of_other_encoders() -> None:
    assert resolve_layers(build_backbone("resnet18")[0], ["auto"]) == ("layer2",)
    assert resolve_layers(build_backbone("resnet50")[0], ["auto", "last"]) == ("layer2", "layer4")
    assert resolve_layers(build_backbone("alexnet_small")[0], ["auto", "last"]) == ("conv5",)
    assert resolve_layers(torch.nn.Linear(3, 2), ["auto"]) == ("last",)


def test_an_encoder_of_unknown_stages_is_read_at_its_output() -> None:
    encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 5))
    x = torch.rand(2, 3, 4, 4)
    with torch.no_grad():
        out = PooledStages(encoder)(x)
        assert list(out) == ["last"] and torch.equal(out["last"], encoder(x))
    with pytest.raises(UsageProblem, match="Sequential has no layer 'layer3'") as info:
        PooledStages(encoder, ["layer3"])
    assert info.value.hint == "choose one of: auto, last"


def test_the_table_shows_each_model_and_the_gain() -> None:
    summary = {"mean": 0.8512, "std": 0.0021, "accuracies": [0.85, 0.8524], "test_stderr": 0.0036}
    base = {"mean": 0.8301, "std": 0.0010, "accuracies": [0.83, 0.8302], "test_stderr": 0.0037}
    report = {
        "protocol": ProbeProtocol(seeds=2).record(),
        "dataset": "fashion-mnist",
        "n_train": 10_000,
        "n_test": 10_000,
        "models": {
            "checkpoint": {"label": "ckpt.pt (step 400)"},
            "random-init": {"label": "random-init r18"},
        },
        "results": {
            "checkpoint": {"layer4": {"linear": summary}},
            "random-init": {"layer4": {"linear": base}},
        },
        "gain": {"layer4": {"linear": {"mean": 0.0211, "std": 0.0011}}},
    }
    table = format_report(report)
    assert "protocol probe-v2 (modified): 64 px, 10000 train / 10000 test images, 2 probe seeds" in table
    assert "layer layer4  ckpt.pt (step 400)  random-init r18  gain" in table
    assert "linear        85.12 ± 0.21        83.01 ± 0.10     +2.11 ± 0.11" in table
    assert "±0.36 points" in table
