"""The pretrain command line end to end on a tiny run: train, resume, probe, export, preview."""

from __future__ import annotations

import contextlib
import json

import pytest
import torch

from corpus import cliutils
from corpus.cliutils import run_app
from pretrain.cli import app
from tests.pretrain.helpers import SHADERS, needs_fashion_mnist, write_image_folder


def pretrain(args, capsys):
    code = run_app(app, "pretrain", args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_train_resume_export_and_preview(snapshot_dir, tmp_path, capsys):
    out = tmp_path / "run"
    common = [
        "--snapshot",
        str(snapshot_dir),
        "--arch",
        "resnet18",
        "--size",
        "32",
        "--batch-size",
        "4",
        "--workers",
        "0",
        "--out",
        str(out),
    ]
    code, stdout, _ = pretrain(["train", *common, "--method", "simclr", "--steps", "2", "--json"], capsys)
    assert code == 0, stdout
    summary = json.loads(stdout)
    assert summary["steps"] == 2 and (out / "ckpt.pt").exists() and (out / "metrics.csv").exists()
    code, _, err = pretrain(["train", *common, "--method", "simclr", "--steps", "2"], capsys)
    assert code == 2 and "already holds a run" in err and "--resume" in err
    code, stdout, _ = pretrain(
        ["train", *common, "--method", "simclr", "--steps", "3", "--resume", "--json"], capsys
    )
    assert code == 0 and json.loads(stdout)["steps"] == 3
    # --resume alone: the run's settings come from its config.json, not the defaults
    code, stdout, err = pretrain(["train", "--out", str(out), "--resume", "--steps", "4", "--json"], capsys)
    assert code == 0, err
    assert json.loads(stdout)["steps"] == 4
    assert json.loads((out / "config.json").read_text())["arch"] == "resnet18"
    code, stdout, err = pretrain(["train", "--out", str(out), "--resume", "--steps", "5"], capsys)
    assert code == 0 and "step 5/5  loss" in err  # no terminal here: progress as log lines
    assert "trained 5 steps" in stdout and "1 steps in this run" in stdout
    code, stdout, _ = pretrain(
        ["export", str(out / "ckpt.pt"), "--out", str(tmp_path / "r18.pt"), "--json"], capsys
    )
    assert code == 0
    written = json.loads(stdout)
    assert written["format"] == "torchvision"
    state = torch.load(tmp_path / "r18.pt", weights_only=True)
    assert state["fc.weight"].shape == (1000, 512) and "layer4.1.bn2.running_var" in state
    assert (tmp_path / "MODEL_CARD.md").is_file() and (tmp_path / "ATTRIBUTION.md").is_file()
    # the protocol on the checkpoint and on its baseline (its arch at random init) in one call
    colours = write_image_folder(tmp_path / "colours", per_class=5)
    probe = ["probe", str(out / "ckpt.pt"), "--dataset", str(colours), "--seeds", "2", "--few-shot", "1,2"]
    code, stdout, err = pretrain([*probe, "--json"], capsys)
    assert code == 0, err
    report = json.loads(stdout)
    assert list(report["models"]) == ["checkpoint", "random-init"]
    assert (
        report["models"]["random-init"]["arch"] == "resnet18" and report["models"]["checkpoint"]["step"] == 5
    )
    assert report["protocol"]["version"] == "probe-v2" and report["protocol"]["size"] == 64
    assert report["protocol"]["few_shot"] == [1, 2] and report["protocol"]["seeds"] == 2
    # the protocol's stage of a ResNet is layer2 (probe-v2)
    assert list(report["gain"]) == ["layer2"]
    assert list(report["gain"]["layer2"]) == ["linear", "1-shot", "2-shot", "knn"]
    code, stdout, err = pretrain([*probe, "--layer", "layer3", "--baseline", "none"], capsys)
    assert code == 0, err
    assert f"layer layer3  {out / 'ckpt.pt'} (step 5)\n" in stdout and "random-init" not in stdout
    assert "\n1-shot " in stdout and "k-NN (k=20)" in stdout and "protocol probe-v2 (modified)" in stdout
    code, _, err = pretrain([*probe, "--layer", "conv9"], capsys)
    assert code == 2 and "resnet18 has no layer 'conv9'" in err and "layer1, layer2" in err
    code, _, err = pretrain([*probe, "--few-shot", "1,ten"], capsys)
    assert code == 2 and "--few-shot takes whole numbers" in err
    code, stdout, _ = pretrain(
        ["preview", str(snapshot_dir), "--out", str(tmp_path / "p.png"), "--size", "16", "--n", "4"], capsys
    )
    assert code == 0 and (tmp_path / "p.png").exists()


def test_bad_inputs_are_one_line_errors(snapshot_dir, tmp_path, capsys):
    code, _, err = pretrain(
        ["train", "--snapshot", str(tmp_path / "nowhere"), "--steps", "1", "--out", str(tmp_path / "r")],
        capsys,
    )
    assert code == 5 and "neither a snapshot folder" in err
    assert not (tmp_path / "r").exists()  # a run that cannot start leaves no run folder
    code, _, err = pretrain(["train", "--snapshot", str(snapshot_dir), "--method", "byol"], capsys)
    assert code == 2 and "unknown method" in err
    code, _, err = pretrain(["probe"], capsys)
    assert code == 2 and "--random-init" in err
    code, _, err = pretrain(["probe", str(tmp_path / "missing.pt")], capsys)
    assert code != 0 and "missing.pt" in err


@needs_fashion_mnist
def test_probe_random_init_on_fashion_mnist(capsys):
    args = ["probe", "--random-init", "--arch", "alexnet_small", "--size", "16", "--seeds", "1"]
    code, stdout, _ = pretrain(
        [*args, "--few-shot", "1", "--max-train", "300", "--max-test", "200", "--json"], capsys
    )
    assert code == 0
    report = json.loads(stdout)
    assert report["n_train"] == 300 and report["n_test"] == 200 and list(report["models"]) == ["random-init"]
    assert 0.2 < report["results"]["random-init"]["conv5"]["linear"]["mean"] <= 1.0


@pytest.mark.parametrize(
    ("line", "key", "wanted"),
    [
        ('steps = "many"', "steps", "an integer"),
        ('lr = "x"', "lr", "a number"),
        ("size = 32.5", "size", "an integer"),
        ('amp = "yes"', "amp", "true or false"),
        ("steps = true", "steps", "an integer"),
        ("learning_rate = 0.1", "learning_rate", "unknown config key"),
    ],
)
def test_a_config_of_the_wrong_type_is_one_error_naming_key_type_and_file(
    snapshot_dir, tmp_path, capsys, line, key, wanted
):
    path = tmp_path / "bad.toml"
    steps = "" if key == "steps" else "steps = 1\nbatch_size = 2\nworkers = 0\n"  # quick if it runs
    path.write_text(f'snapshot = "{snapshot_dir}"\n{steps}{line}\n')
    code, _, err = pretrain(["train", "--config", str(path), "--out", str(tmp_path / "r")], capsys)
    assert code == 2, err
    first = err.splitlines()[0]
    assert first.startswith("error: ") and str(path) in first and key in first and wanted in first
    assert "Traceback" not in err and not (tmp_path / "r").exists()


def test_a_cuda_device_on_a_cpu_only_torch_is_refused_and_leaves_no_run_folder(
    snapshot_dir, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    toml = tmp_path / "gpu.toml"
    toml.write_text('device = "cuda"\n')
    for how in (["--device", "cuda"], ["--config", str(toml)], ["--device", "tpu"]):
        out = tmp_path / "r"
        code, _, err = pretrain(
            ["train", "--snapshot", str(snapshot_dir), "--steps", "1", "--out", str(out), *how], capsys
        )
        assert code == 2, err
        assert err.startswith("error: ") and "device" in err.splitlines()[0] and "hint: " in err
        assert "Traceback" not in err
        assert not out.exists()


def test_an_out_folder_under_a_file_is_a_usage_error(snapshot_dir, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    code, _, err = pretrain(
        ["train", "--snapshot", str(snapshot_dir), "--steps", "1", "--out", str(tmp_path / "afile" / "r")],
        capsys,
    )
    assert code == 2 and "afile is a file" in err and "Traceback" not in err
    code, _, err = pretrain(
        ["dataset", str(snapshot_dir), "--out", str(tmp_path / "afile" / "d"), "--per-program", "1"], capsys
    )
    assert code == 2 and "afile is a file" in err


def test_lr_must_be_positive_wherever_it_is_given(snapshot_dir, tmp_path, capsys):
    toml = tmp_path / "zero.toml"
    toml.write_text(f'snapshot = "{snapshot_dir}"\nlr = 0\nsteps = 1\nbatch_size = 2\nworkers = 0\n')
    for how in (["--config", str(toml)], ["--snapshot", str(snapshot_dir), "--lr", "-0.1"]):
        code, _, err = pretrain(["train", *how, "--out", str(tmp_path / "r")], capsys)
        assert code == 2 and "lr must be > 0" in err and "hint: leave it out" in err, err
        assert not (tmp_path / "r").exists()
    assert str(toml) in pretrain(["train", "--config", str(toml)], capsys)[2]


def test_resume_without_a_run_folder_says_so(tmp_path, capsys, monkeypatch):
    code, _, err = pretrain(["train", "--resume", "--out", str(tmp_path / "nowhere")], capsys)
    assert code == 5 and f"nothing to resume: {tmp_path / 'nowhere'} holds no run" in err
    assert "hint: pass --out with the folder of the run" in err
    monkeypatch.chdir(tmp_path)
    code, _, err = pretrain(["train", "--resume"], capsys)
    assert code == 5 and "no --out was given" in err


def test_probe_and_dataset_report_progress_through_the_shared_helper(
    snapshot_dir, tmp_path, capsys, monkeypatch
):
    phases = []

    @contextlib.contextmanager
    def recording(description, total=None):
        phases.append((description, total))
        yield lambda n: None

    monkeypatch.setattr(cliutils, "progress", recording)
    colours = write_image_folder(tmp_path / "colours", per_class=5)
    args = ["probe", "--random-init", "--arch", "alexnet_small", "--size", "16", "--dataset", str(colours)]
    code, _, err = pretrain([*args, "--seeds", "2", "--few-shot", "1"], capsys)
    assert code == 0, err
    # 12 training and 3 test images; 2 seeds of the 1-shot probe, the linear and the k-NN probes
    assert phases == [("probe: features of random-init", 15), ("probe: fitting on random-init", 4)]
    phases.clear()
    args = ["dataset", str(snapshot_dir), "--out", str(tmp_path / "d"), "--per-program", "1", "--size", "16"]
    code, _, err = pretrain([*args, "--workers", "0"], capsys)
    assert code == 0, err
    assert phases == [("rendering programs", len(SHADERS))]


@pytest.mark.parametrize(
    ("lines", "key"),
    [
        ("time_min = 5.0\ntime_max = 1.0", "time_min"),
        ("weight_decay = -0.1", "weight_decay"),
        ("cache_programs = 0", "cache_programs"),
        ('augment = "x"', "augment"),
        ("mixup_k = -2", "mixup_k"),
        ('gl_device = "x"', "gl_device"),
    ],
)
def test_a_config_value_out_of_range_is_refused_at_load_naming_its_key(
    snapshot_dir, tmp_path, capsys, lines, key
):
    path = tmp_path / "bad.toml"
    path.write_text(f'snapshot = "{snapshot_dir}"\nsteps = 1\nbatch_size = 2\nworkers = 0\n{lines}\n')
    out = tmp_path / "r"
    code, _, err = pretrain(["train", "--config", str(path), "--out", str(out)], capsys)
    assert code == 2, err
    first, second = err.splitlines()[:2]
    assert first.startswith("error: ") and key in first and second.startswith("hint: ")
    assert "Traceback" not in err and not out.exists()


def test_the_augmentations_a_config_accepts_are_the_presets():
    from pretrain.augment import PRESETS
    from pretrain.config import AUGMENTATIONS

    assert AUGMENTATIONS == tuple(PRESETS)


def test_a_preview_path_pillow_cannot_write_is_refused_before_rendering(
    snapshot_dir, tmp_path, capsys, monkeypatch
):
    from pretrain import data as pretrain_data

    def no_rendering(*args, **kwargs):
        raise AssertionError("rendered before the --out check")

    monkeypatch.setattr(pretrain_data, "ShaderStream", no_rendering)
    (tmp_path / "afile").write_text("x")
    for out, words in (
        (tmp_path / "afile" / "p.png", "afile is a file"),
        (tmp_path / "preview", "has no image extension"),
        (tmp_path / "p.txt", "has no image extension Pillow can write (.txt)"),
        (tmp_path, "is a folder"),
    ):
        code, _, err = pretrain(["preview", str(snapshot_dir), "--out", str(out)], capsys)
        assert code == 2 and words in err.splitlines()[0] and err.splitlines()[1].startswith("hint: "), err
        assert "Traceback" not in err
