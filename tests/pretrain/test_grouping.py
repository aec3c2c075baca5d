"""Samples grouped by program: a batch compiles one program a group, and every sample keeps its own
randomness (time, MixUp weights) from (seed, its global index), whatever the workers, ranks and
resumes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pretrain import data
from pretrain.data import ShaderStream, StreamConfig
from pretrain.loader import make_loader
from pretrain.snapshot import open_snapshot

GROUPED = StreamConfig(size=16, batch_size=8, seed=3, samples_per_program=4)


def batches(stream, workers=0):
    return list(make_loader(stream, workers))


def same(a: dict, b: dict) -> bool:
    return torch.equal(a["images"], b["images"]) and torch.equal(a["labels"], b["labels"])


def own_generator(seed: int, index: int) -> np.random.Generator:
    return np.random.Generator(np.random.Philox(key=seed, counter=[0, index, 0, 0]))


def test_samples_of_a_group_share_the_program_their_first_sample_draws(snapshot_dir):
    snap = open_snapshot(snapshot_dir)
    [batch] = batches(ShaderStream(snap, GROUPED, start_batch=1, max_batches=1))
    index = batch["index"].tolist()
    assert index == list(range(8, 16))
    expected = [int(own_generator(3, i - i % 4).integers(len(snap))) for i in index]
    assert batch["labels"].tolist() == expected
    assert len(set(expected[:4])) == len(set(expected[4:])) == 1


def test_each_sample_of_a_group_renders_at_its_own_time(snapshot_dir):
    # the time a sample draws is the one it would draw alone: its generator's second number
    snap = open_snapshot(snapshot_dir)
    [batch] = batches(ShaderStream(snap, GROUPED, max_batches=1))
    renderer = data._Renderer(snap, GROUPED)
    try:
        for image, label, i in zip(batch["images"], batch["labels"], batch["index"], strict=True):
            rng = own_generator(3, int(i))
            rng.integers(len(snap))
            expected = np.empty((16, 16, 3), np.uint8)
            renderer.render_into(int(label), float(rng.uniform(0.1, 10.0)), expected)
            assert np.array_equal(image.numpy(), expected)
    finally:
        renderer.close()
    assert not torch.equal(batch["images"][0], batch["images"][1])  # one program, other times


def test_grouped_streams_are_the_same_whatever_the_workers_ranks_and_resumes(snapshot_dir):
    snap = open_snapshot(snapshot_dir)
    config = StreamConfig(size=16, batch_size=6, seed=1, samples_per_program=4)  # groups straddle batches
    alone = batches(ShaderStream(snap, config, max_batches=4))
    pooled = batches(ShaderStream(snap, config, max_batches=4), workers=2)
    assert all(same(a, b) for a, b in zip(alone, pooled, strict=True))
    resumed = batches(ShaderStream(snap, config, start_batch=2, max_batches=2))
    assert same(alone[2], resumed[0]) and same(alone[3], resumed[1])
    pictures = {
        int(i): (image, int(label))
        for b in alone
        for i, image, label in zip(b["index"], b["images"], b["labels"], strict=True)
    }
    ranks = [batches(ShaderStream(snap, config, rank=r, world_size=2, max_batches=2)) for r in (0, 1)]
    seen = []
    for r, rank in enumerate(ranks):
        for b in rank:
            for i, image, label in zip(b["index"].tolist(), b["images"], b["labels"].tolist(), strict=True):
                assert (i // 4) % 2 == r  # whole groups: group g goes to rank g mod 2
                assert torch.equal(image, pictures[i][0]) and label == pictures[i][1]
                seen.append(i)
    assert sorted(seen) == list(range(24))


def test_a_batch_compiles_one_program_a_group_and_counts_it(snapshot_dir):
    snap = open_snapshot(snapshot_dir)
    config = StreamConfig(size=16, batch_size=8, seed=0, samples_per_program=4)
    got = batches(ShaderStream(snap, config, max_batches=3))
    known: set[int] = set()
    for b in got:
        labels = set(b["labels"].tolist())
        assert b["compiles"] == len(labels - known) <= 2  # a renderer keeps what it compiled
        known |= labels
    ungrouped = batches(ShaderStream(snap, StreamConfig(size=16, batch_size=8, seed=0), max_batches=1))
    assert ungrouped[0]["compiles"] == len(set(ungrouped[0]["labels"].tolist())) > 2


def test_a_group_whose_program_fails_draws_again_for_the_whole_group(snapshot_with_broken):
    snap = open_snapshot(snapshot_with_broken)
    broken = next(e["index"] for e in snap.entries if e["program"] == "shadertoy:tBroken")
    config = StreamConfig(size=16, batch_size=16, seed=0, samples_per_program=4)
    got = batches(ShaderStream(snap, config, max_batches=2))
    labels = torch.cat([b["labels"] for b in got]).tolist()
    assert broken not in labels and sum(b["skipped"] for b in got) > 0
    assert all(len(set(labels[g * 4 : g * 4 + 4])) == 1 for g in range(8))
    assert sum(b["compiles"] for b in got) == len(set(labels)) + 1  # the failed compile counts
    pooled = batches(ShaderStream(snap, config, max_batches=2), workers=2)
    assert all(same(a, b) for a, b in zip(got, pooled, strict=True))


def test_mixup_groups_share_their_programs_and_draw_their_own_weights(snapshot_dir):
    snap = open_snapshot(snapshot_dir)
    config = StreamConfig(size=16, batch_size=8, seed=2, mixup_k=3, samples_per_program=4)
    [batch] = batches(ShaderStream(snap, config, max_batches=1))
    for g in range(2):
        sets = {frozenset(row.tolist()) for row in batch["mix_labels"][g * 4 : g * 4 + 4]}
        assert len(sets) == 1
        weights = batch["mix_weights"][g * 4 : g * 4 + 4]
        assert len({tuple(w.tolist()) for w in weights}) == 4
    member = own_generator(2, 1)
    [member.integers(len(snap)) for _ in range(3)]
    [member.uniform(0.1, 10.0) for _ in range(3)]
    weights = np.sort(member.dirichlet([1.0] * 3))[::-1]
    assert np.allclose(batch["mix_weights"][1].numpy(), weights)


def test_a_group_size_below_one_is_refused(snapshot_dir):
    with pytest.raises(ValueError, match="samples_per_program must be >= 1"):
        ShaderStream(open_snapshot(snapshot_dir), StreamConfig(samples_per_program=0))


def test_a_worker_of_a_stream_over_more_programs_than_it_keeps_compiled_jits_quickly(
    snapshot_dir, monkeypatch
):
    """GALLIVM_PERF=nopt in a loader worker where nearly every group compiles a program (issue 11.6);
    a stream whose programs all stay compiled keeps the optimised JIT, and a user's setting wins."""
    import os

    snap = open_snapshot(snapshot_dir)
    monkeypatch.setenv("LP_NUM_THREADS", "0")  # share_cores leaves a set value alone
    few = StreamConfig(size=16, batch_size=8, cache_programs=len(snap))
    many = StreamConfig(size=16, batch_size=8, cache_programs=len(snap) - 1)
    monkeypatch.delenv("GALLIVM_PERF", raising=False)
    ShaderStream(snap, few).prepare_worker(2)
    assert "GALLIVM_PERF" not in os.environ
    only_two = np.zeros(len(snap))
    only_two[:2] = 1.0
    ShaderStream(snap, many, weights=only_two).prepare_worker(2)  # samples 2 programs: all kept
    assert "GALLIVM_PERF" not in os.environ
    ShaderStream(snap, many).prepare_worker(2)
    assert os.environ["GALLIVM_PERF"] == "nopt"
    monkeypatch.setenv("GALLIVM_PERF", "")
    ShaderStream(snap, many).prepare_worker(2)
    assert os.environ["GALLIVM_PERF"] == ""
