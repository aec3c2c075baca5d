"""The on-the-fly stream: determinism across workers, ranks and resumes; MixUp; bad snapshots."""

from __future__ import annotations

import json
import os
import shutil
import threading

import numpy as np
import pytest
import torch

from corpus.errors import SnapshotError, UsageProblem
from pretrain import loader
from pretrain.data import ShaderStream, StreamConfig
from pretrain.loader import Ring, batch_nbytes, make_loader
from pretrain.snapshot import open_snapshot
from tests.pretrain.helpers import SHADERS, make_snapshot

SMALL = StreamConfig(size=32, batch_size=6, seed=3)


def batches(stream, workers=0):
    return list(make_loader(stream, workers))


def same(a: dict, b: dict) -> bool:
    return torch.equal(a["images"], b["images"]) and torch.equal(a["labels"], b["labels"])


def test_batches_are_rendered_images_labelled_by_program_index(snapshot_dir):
    snap = open_snapshot(snapshot_dir)
    [batch] = batches(ShaderStream(snap, SMALL, max_batches=1))
    assert batch["images"].shape == (6, 32, 32, 3) and batch["images"].dtype == torch.uint8
    assert batch["labels"].min() >= 0 and batch["labels"].max() < len(snap)
    assert batch["images"].float().std() > 10
    assert batch["index"].tolist() == list(range(6)) and batch["skipped"] == 0


def test_worker_count_does_not_change_the_stream(snapshot_dir):
    snap = open_snapshot(snapshot_dir)
    alone = batches(ShaderStream(snap, SMALL, max_batches=4), workers=0)
    pooled = batches(ShaderStream(snap, SMALL, max_batches=4), workers=2)
    assert [b["batch"] for b in pooled] == [0, 1, 2, 3]
    assert all(same(a, b) for a, b in zip(alone, pooled, strict=True))


def test_a_resumed_stream_sees_exactly_what_it_would_have(snapshot_dir):
    snap = open_snapshot(snapshot_dir)
    full = batches(ShaderStream(snap, SMALL, max_batches=5))
    resumed = batches(ShaderStream(snap, SMALL, start_batch=3, max_batches=2))
    assert same(full[3], resumed[0]) and same(full[4], resumed[1])


def test_ranks_split_the_global_stream_without_overlap(snapshot_dir):
    snap = open_snapshot(snapshot_dir)
    ranks = [batches(ShaderStream(snap, SMALL, rank=r, world_size=2, max_batches=2)) for r in (0, 1)]
    seen = [set(torch.cat([b["index"] for b in rank]).tolist()) for rank in ranks]
    assert not seen[0] & seen[1]
    assert seen[0] | seen[1] == set(range(24))


def test_each_sample_draws_from_philox_at_its_own_counter_block(snapshot_dir):
    snap = open_snapshot(snapshot_dir)
    [batch] = batches(ShaderStream(snap, SMALL, start_batch=2, max_batches=1))
    expected = []
    for i in batch["index"].tolist():
        rng = np.random.Generator(np.random.Philox(key=SMALL.seed, counter=[0, i, 0, 0]))
        expected.append(int(rng.integers(len(snap))))
    assert batch["labels"].tolist() == expected


def test_mixup_blends_k_programs_with_dirichlet_weights(snapshot_dir):
    snap = open_snapshot(snapshot_dir)
    config = StreamConfig(size=32, batch_size=8, seed=1, mixup_k=3, mixup_alpha=1.0)
    [batch] = batches(ShaderStream(snap, config, max_batches=1))
    weights, labels = batch["mix_weights"], batch["mix_labels"]
    assert weights.shape == labels.shape == (8, 3)
    assert torch.allclose(weights.sum(1), torch.ones(8))
    assert (weights[:, :-1] >= weights[:, 1:]).all()  # sorted: the first is the dominant program
    assert torch.equal(batch["labels"], labels[:, 0])


def test_a_mixup_image_is_its_programs_images_blended_with_their_weights(tmp_path):
    # three programs of one flat primary colour each: a blend's pixel is the weights themselves
    colours = {"cRed": "1.0, 0.0, 0.0", "cGreen": "0.0, 1.0, 0.0", "cBlue": "0.0, 0.0, 1.0"}
    shaders = {
        key: f"void mainImage(out vec4 c, in vec2 f) {{ c = vec4({rgb}, 1.0); }}"
        for key, rgb in colours.items()
    }
    snap = open_snapshot(make_snapshot(tmp_path, shaders))
    channel = {e["index"]: "RGB".index(e["program"].split(":c")[1][0]) for e in snap.entries}
    config = StreamConfig(size=16, batch_size=6, seed=4, mixup_k=3, mixup_alpha=1.0)
    [batch] = batches(ShaderStream(snap, config, max_batches=1))
    for image, labels, weights in zip(
        batch["images"], batch["mix_labels"], batch["mix_weights"], strict=True
    ):
        expected = torch.zeros(3)
        for label, weight in zip(labels.tolist(), weights.tolist(), strict=True):
            expected[channel[label]] += 255 * weight
        assert (image.reshape(-1, 3).float() - expected).abs().max() <= 1.0, (image[0, 0], expected)


def test_mixup_batches_from_workers_equal_those_made_in_process(snapshot_dir):
    # a worker's batch is one slot of the ring (images, ids, weights): every view must arrive intact
    snap = open_snapshot(snapshot_dir)
    config = StreamConfig(size=24, batch_size=5, seed=2, mixup_k=2)
    alone = batches(ShaderStream(snap, config, max_batches=2), workers=0)
    pooled = batches(ShaderStream(snap, config, max_batches=2), workers=2)
    for a, b in zip(alone, pooled, strict=True):
        for key in ("images", "labels", "index", "mix_labels", "mix_weights"):
            assert b[key].shape == a[key].shape and torch.equal(a[key], b[key]), key


def test_batches_kept_by_the_caller_survive_the_ring_going_round(snapshot_dir):
    # 2 workers × 4 slots: batches 8-13 reuse the slots of batches 0-5, which the list still holds
    snap = open_snapshot(snapshot_dir)
    config = StreamConfig(size=16, batch_size=3, seed=5)
    alone = batches(ShaderStream(snap, config, max_batches=14), workers=0)
    pooled = batches(ShaderStream(snap, config, max_batches=14), workers=2)
    assert [b["batch"] for b in pooled] == list(range(14))
    assert all(same(a, b) for a, b in zip(alone, pooled, strict=True))


def test_a_loader_starts_no_more_workers_than_it_has_batches_and_refuses_negative_ones(snapshot_dir):
    snap = open_snapshot(snapshot_dir)
    assert make_loader(ShaderStream(snap, SMALL, max_batches=3), 50).workers == 3
    assert make_loader(ShaderStream(snap, SMALL), 5).workers == 5  # endless: every worker has work
    with pytest.raises(ValueError, match="workers must be >= 0"):
        make_loader(ShaderStream(snap, SMALL), -1)


def test_a_worker_waits_for_its_oldest_slot_to_be_taken(monkeypatch):
    ring = Ring(workers=1, slots=2, nbytes=batch_nbytes(StreamConfig(size=8, batch_size=2)))
    first = ring.claim(0, 0)
    assert ring.claim(0, 1) != first
    claimed = []
    waiter = threading.Thread(target=lambda: claimed.append(ring.claim(0, 2)))
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive() and not claimed  # batch 0 is still in slot 0
    ring.take(0, 0, StreamConfig(size=8, batch_size=2))
    waiter.join(5)
    assert claimed == [first]
    monkeypatch.setattr(loader, "RING_WAIT_S", 0.05)
    with pytest.raises(RuntimeError, match="to take its batches"):
        ring.claim(0, 4)  # batch 2 was never taken


def test_workers_that_would_not_fit_in_shared_memory_are_refused_before_they_start(snapshot_dir, monkeypatch):
    snap = open_snapshot(snapshot_dir)
    real = os.statvfs("/dev/shm")
    small = os.statvfs_result((*real[:4], 16, *real[5:]))  # 16 blocks free
    monkeypatch.setattr(os, "statvfs", lambda path: small)
    loader = make_loader(ShaderStream(snap, StreamConfig(size=64, batch_size=32), max_batches=1), 2)
    with pytest.raises(UsageProblem, match="shared memory") as caught:
        next(iter(loader))
    assert "--shm-size" in caught.value.hint


def test_weighted_sampling_follows_the_weights(snapshot_dir):
    snap = open_snapshot(snapshot_dir)
    weights = np.zeros(len(snap))
    weights[2] = 1.0
    [batch] = batches(ShaderStream(snap, SMALL, weights=weights, max_batches=1))
    assert set(batch["labels"].tolist()) == {2}


def test_a_program_that_does_not_compile_here_is_skipped_and_counted(snapshot_with_broken):
    snap = open_snapshot(snapshot_with_broken)
    broken = next(e["index"] for e in snap.entries if e["program"] == "shadertoy:tBroken")
    config = StreamConfig(size=16, batch_size=16, seed=0)
    got = batches(ShaderStream(snap, config, max_batches=2))
    assert sum(b["skipped"] for b in got) > 0
    assert broken not in torch.cat([b["labels"] for b in got]).tolist()


def test_a_changed_file_fails_verification_with_a_clear_error(snapshot_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(snapshot_dir, copy)
    changed = "void mainImage(out vec4 c, in vec2 f) { c = vec4(0); }"
    (copy / "programs" / "0" / "image.glsl").write_text(changed)
    with pytest.raises(SnapshotError, match="does not match its manifest"):
        open_snapshot(copy)


def test_an_empty_snapshot_is_refused(snapshot_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "manifest.jsonl").write_text("")
    meta = json.loads((snapshot_dir / "snapshot.json").read_text())
    import hashlib

    meta.update(entries=0, manifest_sha256=hashlib.sha256(b"").hexdigest(), files_sha256={})
    from corpus.snapshots import snapshot_meta_sha256

    meta["snapshot_sha256"] = snapshot_meta_sha256(meta)
    (empty / "snapshot.json").write_text(json.dumps(meta))
    with pytest.raises(SnapshotError, match="no programs"):
        open_snapshot(empty)


def test_a_snapshot_by_name_is_exported_once_into_the_cache(snapshot_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("IMAGEPROGRAMS_CACHE", str(tmp_path / "cache"))
    snap = open_snapshot("s", db=str(snapshot_dir.parent / "c.db"))
    assert snap.root.parent == tmp_path / "cache" / "snapshots" and len(snap) == len(SHADERS)
    with pytest.raises(SnapshotError, match="neither a snapshot folder"):
        open_snapshot("nope", db=str(snapshot_dir.parent / "c.db"))
