"""Learning methods: losses against reference formulas, learning on a tiny problem, MoCo's machinery."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from corpus.errors import UsageProblem
from pretrain.methods import (
    METHODS,
    MoCoV2,
    build_method,
    label_overlap,
    soft_targets,
    weighted_contrastive_loss,
)
from pretrain.models import build_backbone
from tests.pretrain.synthetic import NUM_CLASSES, make_batch, one_thread

# Small options so that the tiny problem exercises a full queue within a few steps.
TEST_OPTIONS = {"mocov2": {"queue_size": 32, "momentum": 0.9}}


def new_method(name: str, seed: int = 0, **kw: object) -> torch.nn.Module:
    torch.manual_seed(seed)
    backbone, dim = build_backbone("alexnet_small")
    return build_method(name, backbone, dim, NUM_CLASSES, **{**TEST_OPTIONS.get(name, {}), **kw})


def with_mix(batch: dict, k: int = 3, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    n = batch["labels"].shape[0]
    draws = -torch.log(torch.rand(n, k, generator=g))  # Dirichlet(1, ..., 1), as the stream draws them
    weights = draws / draws.sum(dim=1, keepdim=True)
    mix_labels = torch.randint(0, NUM_CLASSES, (n, k), generator=g)
    labels = mix_labels[torch.arange(n), weights.argmax(dim=1)]
    return {**batch, "labels": labels, "mix_labels": mix_labels, "mix_weights": weights}


@pytest.mark.parametrize("name", METHODS)
def test_each_method_learns_the_tiny_problem_in_30_steps(name: str) -> None:
    with one_thread():
        method = new_method(name)
        opt = torch.optim.Adam([p for p in method.parameters() if p.requires_grad], lr=1e-3)
        g = torch.Generator().manual_seed(0)
        losses = []
        for _ in range(30):
            loss, metrics = method(make_batch(g))
            opt.zero_grad()
            loss.backward()
            opt.step()
            assert metrics["loss"] == pytest.approx(loss.item())
            losses.append(metrics["loss"])
    # MoCo starts against a queue of random vectors (an easy task) until real keys fill it.
    start = losses[3:8] if name == "mocov2" else losses[:5]
    assert sum(losses[-5:]) / 5 < 0.85 * sum(start) / 5, losses


@pytest.mark.parametrize("name", METHODS)
def test_mixup_batches_give_a_finite_loss_and_gradients(name: str) -> None:
    with one_thread():
        method = new_method(name)
        batch = with_mix(make_batch(torch.Generator().manual_seed(1), n=8))
        loss, metrics = method(batch)
        loss.backward()
    assert loss.ndim == 0 and math.isfinite(loss.item())
    assert set(metrics) >= {"loss"} and all(isinstance(v, float) for v in metrics.values())
    assert all(torch.isfinite(p.grad).all() for p in method.backbone.parameters() if p.grad is not None)


def test_supervised_soft_cross_entropy_equals_hard_one_for_unmixed_labels() -> None:
    with one_thread():
        method = new_method("supervised").eval()
        batch = make_batch(torch.Generator().manual_seed(2), n=8, views=1)
        pure = {**batch, "mix_labels": batch["labels"][:, None], "mix_weights": torch.ones(8, 1)}
        assert method(batch)[0].item() == pytest.approx(method(pure)[0].item(), rel=1e-5)


def test_soft_targets_sum_repeated_programs() -> None:
    targets = soft_targets(torch.tensor([[2, 0, 2]]), torch.tensor([[0.5, 0.2, 0.3]]), 4)
    assert torch.allclose(targets, torch.tensor([[0.2, 0.0, 0.8, 0.0]]))


def test_simclr_loss_is_nt_xent() -> None:
    n, t = 5, 0.2
    z = F.normalize(torch.randn(2 * n, 16, generator=torch.Generator().manual_seed(0)), dim=1)
    sim = z @ z.T / t
    sim.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    reference = F.cross_entropy(sim, target)
    loss, _ = weighted_contrastive_loss(z, torch.eye(n).repeat(2, 2), t)
    assert loss.item() == pytest.approx(reference.item(), rel=1e-5)


def test_simclr_leaves_other_images_of_the_same_program_out_of_its_negatives() -> None:
    torch.manual_seed(0)
    backbone, dim = build_backbone("alexnet_small")
    method = build_method("simclr", backbone, dim, 3, exclude_same_program=True).eval()
    views = [torch.rand(4, 3, 32, 32), torch.rand(4, 3, 32, 32)]
    labels = torch.tensor([0, 0, 1, 2])  # images 0 and 1: one program at two times
    loss, _ = method({"views": views, "labels": labels})
    with torch.no_grad():
        z = F.normalize(method.head(method.backbone(torch.cat(views))), dim=1)
    sim = z @ z.T / method.temperature
    same = labels.repeat(2)[:, None] == labels.repeat(2)[None, :]
    own = torch.eye(4, dtype=torch.bool).repeat(2, 2)
    sim = sim.masked_fill(same & ~own, float("-inf")).fill_diagonal_(float("-inf"))
    reference = F.cross_entropy(sim, torch.cat([torch.arange(4, 8), torch.arange(4)]))
    assert loss.item() == pytest.approx(reference.item(), rel=1e-5)
    method.exclude_same_program = False  # as SimCLR is without groups: every other image a negative
    assert method({"views": views, "labels": labels})[0].item() > loss.item()  # more negatives


def test_supcon_loss_matches_khosla_et_al_written_as_loops() -> None:
    labels = torch.tensor([0, 1, 0, 2, 1, 0])
    t = 0.1
    z = F.normalize(torch.randn(6, 8, generator=torch.Generator().manual_seed(1)), dim=1)
    total = 0.0
    for i in range(6):
        others = [a for a in range(6) if a != i]
        denom = torch.logsumexp(torch.stack([z[i] @ z[a] / t for a in others]), 0)
        positives = [p for p in others if labels[p] == labels[i]]
        if positives:
            total += -sum((z[i] @ z[p] / t - denom) for p in positives) / len(positives)
    anchors = sum(1 for i in range(6) if (labels == labels[i]).sum() > 1)
    weights = (labels[:, None] == labels[None, :]).float()
    loss, _ = weighted_contrastive_loss(z, weights, t)
    assert loss.item() == pytest.approx(float(total) / anchors, rel=1e-5)


def test_label_overlap_is_one_for_equal_mixtures_and_merges_repeated_labels() -> None:
    labels = torch.tensor([[0, 0, 1], [1, 2, 2], [3, 3, 3], [1, 0, 0]])
    weights = torch.tensor([[0.3, 0.3, 0.4], [0.5, 0.25, 0.25], [0.2, 0.3, 0.5], [0.4, 0.1, 0.5]])
    overlap = label_overlap(labels, weights)
    assert torch.allclose(overlap.diagonal(), torch.ones(4))
    assert overlap[0, 1].item() == pytest.approx(0.4)  # {0: .6, 1: .4} vs {1: .5, 2: .5}
    assert overlap[0, 2].item() == 0.0
    assert overlap[0, 3].item() == pytest.approx(1.0)  # the same distribution, listed differently
    assert torch.allclose(overlap, overlap.T)


def test_supcon_with_unmixed_mix_labels_equals_plain_supcon() -> None:
    with one_thread():
        method = new_method("supcon").eval()
        batch = make_batch(torch.Generator().manual_seed(3), n=8)
        pure = {**batch, "mix_labels": batch["labels"][:, None], "mix_weights": torch.ones(8, 1)}
        assert method(batch)[0].item() == pytest.approx(method(pure)[0].item(), rel=1e-5)


def test_moco_enqueues_keys_and_its_key_encoder_trails_the_query_encoder() -> None:
    with one_thread():
        method = new_method("mocov2")
        assert isinstance(method, MoCoV2)
        initial_key = [p.detach().clone() for p in method.key_backbone.parameters()]
        assert all(torch.equal(a, b) for a, b in zip(initial_key, method.backbone.parameters(), strict=True))
        opt = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.1)
        g = torch.Generator().manual_seed(0)
        before = method.queue.clone()
        for _ in range(3):
            loss, _ = method(make_batch(g, n=8))
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert int(method.queue_ptr) == 24
        assert not torch.allclose(method.queue[:, :24], before[:, :24])
        assert torch.equal(method.queue[:, 24:], before[:, 24:])
        assert torch.allclose(method.queue[:, :24].norm(dim=0), torch.ones(24), atol=1e-5)
        assert all(not p.requires_grad for p in method.key_backbone.parameters())
        key_now = list(method.key_backbone.parameters())
        moved = [not torch.equal(k, k0) for k, k0 in zip(key_now, initial_key, strict=True)]
        differs = [not torch.equal(k, q) for k, q in zip(key_now, method.backbone.parameters(), strict=True)]
        assert any(moved) and any(differs)


def test_moco_queue_wraps_around_and_eval_mode_leaves_it_alone() -> None:
    with one_thread():
        method = new_method("mocov2", queue_size=20)
        g = torch.Generator().manual_seed(0)
        for _ in range(3):
            method(make_batch(g, n=8))
        assert int(method.queue_ptr) == 4
        method.eval()
        queue, steps = method.queue.clone(), int(method.steps)
        method(make_batch(g, n=8))
        assert torch.equal(method.queue, queue) and int(method.steps) == steps


def test_moco_state_dict_carries_queue_pointer_step_and_key_encoder() -> None:
    method = new_method("mocov2")
    state = method.state_dict()
    assert {"queue", "queue_ptr", "steps"} <= set(state)
    assert any(k.startswith("key_backbone.") for k in state)
    assert state["queue"].shape == (128, 32)


def test_moco_splits_batch_norm_for_large_batches_reproducibly() -> None:
    with one_thread():
        method = new_method("mocov2", bn_splits=2)
        batch = make_batch(torch.Generator().manual_seed(0), n=32)
        split_loss, _ = method(batch)
        twin = new_method("mocov2", bn_splits=2)
        twin_loss, _ = twin(batch)
        unsplit_loss, _ = new_method("mocov2", bn_splits=1)(batch)
    assert split_loss.item() == pytest.approx(twin_loss.item(), rel=1e-6)
    assert split_loss.item() != pytest.approx(unsplit_loss.item(), rel=1e-4)


def test_contrastive_methods_need_two_views() -> None:
    batch = make_batch(torch.Generator().manual_seed(0), n=4, views=1)
    for name in ("supcon", "simclr", "mocov2"):
        with pytest.raises(UsageProblem, match="2 views"):
            new_method(name)(batch)


def test_build_method_rejects_unknown_names_and_options() -> None:
    backbone, dim = build_backbone("alexnet_small")
    with pytest.raises(UsageProblem, match="byol"):
        build_method("byol", backbone, dim, 4)
    with pytest.raises(UsageProblem, match="queue_size") as info:
        build_method("simclr", backbone, dim, 4, queue_size=10)
    assert "temperature" in info.value.hint
    method = build_method("supcon", backbone, dim, 4, temperature=0.5)
    assert method.temperature == 0.5 and method.backbone is backbone


def _ddp_worker(rank: int, rendezvous: str, out_dir: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=2)
    try:
        torch.set_num_threads(1)
        method = new_method("mocov2")
        method(make_batch(torch.Generator().manual_seed(10 + rank), n=4))
        torch.save({"queue": method.queue, "ptr": method.queue_ptr}, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_moco_enqueues_the_keys_of_every_process_under_torch_distributed(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    # fork: the children need not import torch and this module again (seconds on a busy machine).
    mp.start_processes(
        _ddp_worker,
        args=(str(tmp_path / "rendezvous"), str(tmp_path)),
        nprocs=2,
        join=True,
        start_method="fork",
    )
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert int(r0["ptr"]) == int(r1["ptr"]) == 8
    assert torch.equal(r0["queue"], r1["queue"])
    fresh = new_method("mocov2").queue
    assert torch.equal(r0["queue"][:, 8:], fresh[:, 8:])
    assert not torch.allclose(r0["queue"][:, :4], r0["queue"][:, 4:8])
