"""Ctrl-C in ``pretrain train``: a checkpoint at the current step, a word on how to resume, exit
130, and a resume that continues bit for bit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import torch

from corpus.cliutils import run_app
from pretrain.checkpoint import load_checkpoint
from pretrain.cli import app
from pretrain.train import TrainConfig, train
from tests.conftest import ROOT
from tests.pretrain.synthetic import one_thread

SETTINGS = {
    "method": "simclr",
    "arch": "alexnet_small",
    "size": 16,
    "batch_size": 2,
    "steps": 100,
    "log_every": 1,
    "checkpoint_every": 1000,  # only the interruption writes one before the end
    "plot": False,
}


def test_ctrl_c_saves_a_checkpoint_says_how_to_resume_and_the_resume_is_bit_for_bit(
    snapshot_dir, tmp_path, capsys
):
    toml = tmp_path / "run.toml"
    toml.write_text(
        f"snapshot = {json.dumps(str(snapshot_dir))}\n"
        + "".join(f"{k} = {json.dumps(v)}\n" for k, v in SETTINGS.items())
    )
    out = tmp_path / "stopped"
    command = [sys.executable, "-m", "pretrain.cli", "train", "--config", str(toml), "--out", str(out)]
    # its own session, so that the signal goes as a terminal's Ctrl-C does: to the whole process
    # group, the loader worker included
    proc = subprocess.Popen(
        [*command, "--workers", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        start_new_session=True,
    )
    try:
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if line.startswith("step 3/"):
                break
        assert seen and seen[-1].startswith("step 3/"), "".join(seen)
        os.killpg(proc.pid, signal.SIGINT)
        stdout, rest = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    err = "".join(seen) + rest
    assert proc.returncode == 130, err
    step = load_checkpoint(out / "ckpt.pt")["step"]
    assert 3 <= step < SETTINGS["steps"]
    assert f"interrupted at step {step} of {SETTINGS['steps']}; checkpoint saved: {out / 'ckpt.pt'}" in err
    assert f"continue with: pretrain train --out {out} --resume" in err
    assert "Traceback" not in err and stdout == ""
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]

    with one_thread():  # torch's threads would fight over the shared cores
        code = run_app(app, "pretrain", ["train", "--out", str(out), "--resume", "--workers", "0", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["steps"] == SETTINGS["steps"] and summary["resumed_from"] == step
    logged = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert logged == list(range(1, SETTINGS["steps"] + 1))

    straight = tmp_path / "straight"
    with one_thread():
        train(TrainConfig.load(toml, out=str(straight), workers=0))
    a, b = load_checkpoint(straight / "ckpt.pt")["method"], load_checkpoint(out / "ckpt.pt")["method"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:5]
