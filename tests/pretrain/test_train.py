"""The training loop: a real run on rendered images, bit-for-bit resume, DDP, refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from corpus.errors import ImageProgramsError, UsageProblem
from pretrain.checkpoint import load_checkpoint
from pretrain.config import TrainConfig, run_config
from pretrain.data import ShaderStream, StreamConfig
from pretrain.snapshot import open_snapshot
from pretrain.train import lr_at, program_subset, read_program_list, train
from tests.conftest import ROOT
from tests.pretrain.helpers import SHADERS, make_snapshot


def config(snapshot_dir, out, **kw) -> TrainConfig:
    base = dict(
        snapshot=str(snapshot_dir),
        out=str(out),
        method="supervised",
        arch="alexnet_small",
        size=32,
        steps=6,
        batch_size=8,
        workers=0,
        log_every=1,
        checkpoint_every=3,
        plot=False,
    )
    return TrainConfig.load(None, **(base | kw))


def weights(path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["method"]


@pytest.mark.parametrize("method", ["supervised", "supcon", "simclr", "mocov2"])
def test_every_method_trains_and_writes_a_run_folder(snapshot_dir, tmp_path, method):
    summary = train(config(snapshot_dir, tmp_path / method, method=method, steps=3, queue_size=64))
    out = tmp_path / method
    assert summary["steps"] == 3 and summary["images_seen"] == 24
    assert {"ckpt.pt", "config.json", "metrics.csv", "metrics.jsonl", "summary.json"} <= {
        p.name for p in out.iterdir()
    }
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3] and all(r["loss"] == r["loss"] for r in rows)
    ckpt = load_checkpoint(out / "ckpt.pt")
    assert ckpt["step"] == 3 and ckpt["config"]["method"] == method


def test_mixup_run_uses_soft_labels(snapshot_dir, tmp_path):
    summary = train(config(snapshot_dir, tmp_path / "mix", steps=2, mixup_k=3))
    assert summary["steps"] == 2 and summary["final_loss"] > 0


def test_resume_continues_bit_for_bit(snapshot_dir, tmp_path):
    straight = tmp_path / "straight"
    train(config(snapshot_dir, straight, method="mocov2", queue_size=32))
    split = tmp_path / "split"
    train(config(snapshot_dir, split, method="mocov2", queue_size=32), stop_at=3)
    assert load_checkpoint(split / "ckpt.pt")["step"] == 3
    train(config(snapshot_dir, split, method="mocov2", queue_size=32, steps=6), resume=True)
    a, b = weights(straight / "ckpt.pt"), weights(split / "ckpt.pt")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:5]
    lines = (split / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3, 4, 5, 6]


def test_loader_workers_do_not_change_what_is_learned(snapshot_dir, tmp_path):
    # two workers render through the shared ring; the weights must match a run without workers
    alone = tmp_path / "alone"
    train(config(snapshot_dir, alone, method="simclr", steps=4))
    pooled = tmp_path / "pooled"
    train(config(snapshot_dir, pooled, method="simclr", steps=4, workers=2))
    a, b = weights(alone / "ckpt.pt"), weights(pooled / "ckpt.pt")
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:5]


def test_resume_takes_the_runs_own_settings_and_refuses_to_change_what_defines_it(snapshot_dir, tmp_path):
    out = tmp_path / "run"
    train(config(snapshot_dir, out, method="simclr", steps=2, size=24, batch_size=4, mixup_k=2))
    resumed = TrainConfig.load(None, base=run_config(out), steps=3, workers=0)  # as `--resume --steps 3`
    assert (resumed.method, resumed.size, resumed.batch_size, resumed.mixup_k) == ("simclr", 24, 4, 2)
    summary = train(resumed, resume=True)
    assert summary["steps"] == 3 and summary["steps_this_run"] == 1 and summary["images_seen"] == 12
    for change in ({"method": "mocov2"}, {"method": "supervised"}, {"size": 32, "batch_size": 8}):
        with pytest.raises(UsageProblem, match="was trained with") as caught:
            train(TrainConfig.load(None, base=run_config(out), steps=5, **change), resume=True)
        assert all(key in str(caught.value) for key in change) and "config.json" in caught.value.hint
    with pytest.raises(UsageProblem, match="already at step 3"):
        train(TrainConfig.load(None, base=run_config(out), steps=3), resume=True)


def test_the_group_size_follows_the_cache_and_is_recorded_so_a_resume_keeps_it(snapshot_dir, tmp_path):
    # the cache holds all 4 programs: one sample a program costs no compiles after the first batch
    summary = train(config(snapshot_dir, tmp_path / "a", steps=2))
    assert summary["samples_per_program"] == 1 and summary["compiles"] == len(SHADERS)
    assert json.loads((tmp_path / "a" / "config.json").read_text())["samples_per_program"] == 1
    # a cache smaller than the snapshot: samples come in groups of 8 (a batch of 8: one program)
    out = tmp_path / "b"
    summary = train(config(snapshot_dir, out, steps=2, cache_programs=2, method="simclr"))
    assert summary["samples_per_program"] == 8 and summary["compiles"] <= 2
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["compiles"] == summary["compiles"]
    # a bigger cache on resume (allowed) does not change the stream the run was started with
    resumed = TrainConfig.load(None, base=run_config(out), steps=3, cache_programs=64)
    assert train(resumed, resume=True)["samples_per_program"] == 8
    with pytest.raises(UsageProblem, match="samples_per_program=8"):
        train(TrainConfig.load(None, base=run_config(out), steps=4, samples_per_program=2), resume=True)


def test_a_run_from_before_groups_resumes_with_one_sample_a_program(snapshot_dir, tmp_path):
    out = tmp_path / "old"
    train(config(snapshot_dir, out, steps=2, cache_programs=2, samples_per_program=1))
    ckpt = load_checkpoint(out / "ckpt.pt")
    del ckpt["config"]["samples_per_program"]
    torch.save(ckpt, out / "ckpt.pt")
    saved = run_config(out)
    del saved["samples_per_program"]
    (out / "config.json").write_text(json.dumps(saved))
    summary = train(TrainConfig.load(None, base=run_config(out), steps=3), resume=True)
    assert summary["samples_per_program"] == 1  # not the 8 a new run with this cache would get


def test_a_run_folder_is_never_overwritten_and_resume_needs_a_checkpoint(snapshot_dir, tmp_path):
    train(config(snapshot_dir, tmp_path / "r", steps=1))
    with pytest.raises(ImageProgramsError, match="already holds a run"):
        train(config(snapshot_dir, tmp_path / "r", steps=1))
    with pytest.raises(ImageProgramsError, match="nothing to resume"):
        train(config(snapshot_dir, tmp_path / "fresh", steps=1), resume=True)


def test_resume_refuses_a_checkpoint_of_another_snapshot_or_arch(snapshot_dir, tmp_path):
    run = tmp_path / "r"
    train(config(snapshot_dir, run, steps=1))
    other = make_snapshot(tmp_path / "other", dict(list(SHADERS.items())[:2]))
    with pytest.raises(ImageProgramsError, match="snapshot"):
        train(config(other, run, steps=2), resume=True)
    with pytest.raises(ImageProgramsError, match="arch"):
        train(config(snapshot_dir, run, steps=2, arch="resnet18"), resume=True)


def test_config_from_toml_with_overrides_and_clear_errors(tmp_path, snapshot_dir):
    path = tmp_path / "c.toml"
    path.write_text(f'snapshot = "{snapshot_dir}"\nmethod = "simclr"\nsteps = 50\n')
    cfg = TrainConfig.load(path, steps=7)
    assert cfg.method == "simclr" and cfg.steps == 7
    path.write_text('snapshot = "x"\nlearning_rate = 1\n')
    with pytest.raises(UsageProblem, match="unknown config key"):
        TrainConfig.load(path)
    with pytest.raises(UsageProblem, match="unknown method"):
        TrainConfig.load(None, snapshot="x", method="byol")
    # a typo of 200 workers would start 200 processes with a GL context each (it thrashed a 24 GB box)
    for workers in (-1, 4 * len(os.sched_getaffinity(0)) + 1):
        with pytest.raises(UsageProblem, match="workers must be between 0 and") as caught:
            TrainConfig.load(None, snapshot="x", workers=workers)
        assert "GL context" in caught.value.hint


def test_program_subset_keeps_n_of_all_or_n_of_the_allowed_programs():
    assert program_subset(10, 0, 0) is None and program_subset(10, 10, 0) is None
    assert program_subset(10, 3, 0).sum() == 3
    allowed = program_subset(10, 0, 0, [7, 2, 2, 5])
    assert allowed.nonzero()[0].tolist() == [2, 5, 7]
    for seed in range(5):  # N of the allowed ones, a seeded choice
        chosen = program_subset(10, 2, seed, [7, 2, 5]).nonzero()[0].tolist()
        assert len(chosen) == 2 and set(chosen) <= {2, 5, 7}
        assert chosen == program_subset(10, 2, seed, [2, 5, 7]).nonzero()[0].tolist()


def test_a_program_list_restricts_the_stream_and_the_run_to_its_programs(snapshot_dir, tmp_path):
    snap = open_snapshot(snapshot_dir)
    keys = [e["program"] for e in snap.entries]
    listed = tmp_path / "two.txt"
    listed.write_text(f"# the study's choice\n{keys[3]}\n\n{keys[1]}  # a comment\n")
    allowed = read_program_list(listed, snap)
    assert allowed == [1, 3]
    stream = ShaderStream(
        snap, StreamConfig(size=16, batch_size=8), weights=program_subset(len(snap), 0, 0, allowed)
    )
    labels = torch.cat([b["labels"] for b, _ in zip(stream, range(3), strict=False)])
    assert set(labels.tolist()) == {1, 3}
    summary = train(config(snapshot_dir, tmp_path / "run", steps=2, program_list=str(listed)))
    assert summary["programs_sampled"] == 2 and summary["programs"] == len(snap)
    assert run_config(tmp_path / "run")["program_list"] == str(listed)


def test_a_program_list_naming_programs_the_snapshot_lacks_is_refused_before_a_run(snapshot_dir, tmp_path):
    listed = tmp_path / "list.txt"
    listed.write_text("shadertoy:tGrad\nshadertoy:nope\n")
    with pytest.raises(UsageProblem, match="names 1 program\\(s\\) not in snapshot .*shadertoy:nope") as info:
        train(config(snapshot_dir, tmp_path / "run", program_list=str(listed)))
    assert "manifest.jsonl" in info.value.hint and not (tmp_path / "run").exists()
    listed.write_text("# nothing\n")
    with pytest.raises(UsageProblem, match="names no program"):
        train(config(snapshot_dir, tmp_path / "run", program_list=str(listed)))
    with pytest.raises(UsageProblem, match="cannot read the program list"):
        train(config(snapshot_dir, tmp_path / "run", program_list=str(tmp_path / "missing.txt")))


def test_learning_rate_warms_up_then_decays_to_zero():
    cfg = TrainConfig(snapshot="x", steps=100, warmup_steps=10, lr=1.0)
    assert lr_at(cfg, 0, 1) == pytest.approx(0.1) and lr_at(cfg, 9, 1) == pytest.approx(1.0)
    assert lr_at(cfg, 55, 1) == pytest.approx(0.5) and lr_at(cfg, 100, 1) == pytest.approx(0.0)


def test_ddp_with_two_cpu_processes_on_gloo(snapshot_dir, tmp_path):
    out = tmp_path / "ddp"
    code = (
        "from pretrain.train import TrainConfig, train\n"
        f"train(TrainConfig.load(None, snapshot={str(snapshot_dir)!r}, out={str(out)!r}, method='simclr',"
        " arch='alexnet_small', size=32, steps=3, batch_size=4, workers=0, plot=False, log_every=1))\n"
    )
    script = tmp_path / "run.py"
    script.write_text(code)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["images_seen"] == 3 * 4 * 2
    assert load_checkpoint(out / "ckpt.pt")["extra"]["world_size"] == 2


@pytest.mark.parametrize(
    "bad", [{"checkpoint_every": 0}, {"log_every": 0}, {"mixup_alpha": 0.0}, {"programs": -1}]
)
def test_settings_that_would_crash_the_loop_are_refused_up_front(bad):
    with pytest.raises(UsageProblem, match=next(iter(bad))):
        TrainConfig.load(None, snapshot="x", **bad)
