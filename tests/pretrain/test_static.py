"""``pretrain dataset`` and ``pretrain preview``: static datasets, resumable and reproducible."""

from __future__ import annotations

import json
import os
import tarfile

import numpy as np
import pytest
from PIL import Image

from corpus.errors import UsageProblem
from pretrain import static
from pretrain.data import ShaderStream, StreamConfig
from pretrain.preview import LABEL_WIDTH, preview
from pretrain.snapshot import open_snapshot
from pretrain.static import DatasetJob, build_dataset
from tests.pretrain.helpers import SHADERS


def test_imagefolder_has_a_folder_per_program_and_resumes(snapshot_with_broken, tmp_path):
    out = tmp_path / "if"
    job = DatasetJob(str(snapshot_with_broken), str(out), per_program=3, size=24)
    summary = build_dataset(job, workers=2)
    labels = json.loads((out / "labels.json").read_text())
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert len(labels) == len(SHADERS) + 1 and len(folders) == len(SHADERS)  # the broken one has none
    assert summary["images"] == 3 * len(SHADERS) and list(summary["failed"]) == ["shadertoy:tBroken"]
    image = Image.open(out / folders[0] / "00000.png")
    assert image.size == (24, 24)
    assert (out / "ATTRIBUTION.md").exists()
    again = build_dataset(DatasetJob(str(snapshot_with_broken), str(out), per_program=3, size=24), workers=1)
    assert again["skipped_units"] == len(SHADERS) and again["images_this_run"] == 0
    assert again["images"] == 3 * len(SHADERS)  # what the folder holds, not what this run added
    # a run cut short: the resumed run counts the folders it kept and the ones it rendered
    kept = sorted(p for p in out.iterdir() if p.is_dir())
    for folder in kept[:2]:
        for png in folder.glob("*.png"):
            png.unlink()
        folder.rmdir()
    job = DatasetJob(str(snapshot_with_broken), str(out), per_program=3, size=24)
    resumed = build_dataset(job, workers=0)
    assert (resumed["images"], resumed["images_this_run"]) == (3 * len(SHADERS), 6)
    assert json.loads((out / "dataset.json").read_text())["summary"]["images"] == 3 * len(SHADERS)
    # other options into the same folder would keep these images under a description of others
    for change in ({"size": 32}, {"per_program": 4}, {"fmt": "webdataset"}):
        job = DatasetJob(str(snapshot_with_broken), str(out), **({"per_program": 3, "size": 24} | change))
        with pytest.raises(UsageProblem, match="holds a dataset made with") as caught:
            build_dataset(job, workers=1)
        assert all(key in str(caught.value) for key in change)
    assert json.loads((out / "dataset.json").read_text())["size"] == 24


def test_webdataset_shards_are_the_same_whatever_the_worker_count(snapshot_dir, tmp_path):
    def shards(workers: int):
        out = tmp_path / f"w{workers}"
        job = DatasetJob(str(snapshot_dir), str(out), per_program=5, size=16, fmt="webdataset", shard_size=8)
        summary = build_dataset(job, workers=workers)
        assert summary["images"] == 5 * len(SHADERS) and summary["units"] == -(-5 * len(SHADERS) // 8)
        (out / "shard-000001.tar").unlink()  # as if cut short: the resumed run counts the kept shards
        again = build_dataset(job, workers=workers)
        assert (again["images"], again["images_this_run"], again["skipped_units"]) == (
            5 * len(SHADERS),
            8,
            summary["units"] - 1,
        )
        return {p.name: p.read_bytes() for p in sorted(out.glob("shard-*.tar"))}

    one, two = shards(0), shards(2)
    assert one == two and len(one) == -(-5 * len(SHADERS) // 8)
    with tarfile.open(tmp_path / "w0" / "shard-000000.tar") as tar:
        names = tar.getnames()
        assert len(names) == 3 * 8 and {n.rsplit(".", 1)[1] for n in names} == {"png", "cls", "json"}
        meta = json.loads(tar.extractfile(next(n for n in names if n.endswith(".json"))).read())
        assert meta["program"].startswith("shadertoy:") and 0.1 <= meta["time"] <= 10.0


def test_preview_shows_rendered_augmented_and_mixup_rows(snapshot_dir, tmp_path):
    path = preview(str(snapshot_dir), tmp_path / "p.png", size=16, n=4, mixup_k=3)
    grid = np.asarray(Image.open(path))
    assert grid.shape == (3 * 18 + 2, LABEL_WIDTH + 4 * 18 + 2, 3)
    x0 = LABEL_WIDTH + 2
    rows = [grid[2 + r * 18 : 2 + r * 18 + 16, x0 : x0 + 16] for r in range(3)]
    assert all(row.std() > 5 for row in rows)
    labels = [grid[r * 18 : (r + 1) * 18, :LABEL_WIDTH] for r in range(3)]
    assert all((band > 150).any() for band in labels)  # each row is named in light text
    # the credits of every program shown, each once, in the order they appear: the rendered row's,
    # then those the MixUp row blends (the same seeded streams the preview drew)
    snap = open_snapshot(str(snapshot_dir))

    def first_batch(**mixup: int) -> dict:
        config = StreamConfig(size=16, batch_size=4, seed=0, **mixup)
        return next(iter(ShaderStream(snap, config, max_batches=1)))

    plain, mixed = first_batch(), first_batch(mixup_k=3)
    shown = dict.fromkeys([*plain["labels"].tolist(), *mixed["mix_labels"].flatten().tolist()])
    credits = (tmp_path / "p.credits.md").read_text()
    listed = [line for line in credits.splitlines() if line.startswith("- ")]
    assert [line.split("(", 1)[1].split(")", 1)[0] for line in listed] == [
        snap.entries[i]["program"] for i in shown
    ]
    assert len(shown) > len(set(plain["labels"].tolist()))  # MixUp brought programs of its own


def test_preview_views_are_the_training_default_unless_a_preset_is_named(snapshot_dir, tmp_path):
    x0 = LABEL_WIDTH + 2

    def views(augment):
        out = tmp_path / f"{augment}.png"
        path = preview(str(snapshot_dir), out, size=16, n=4, mixup_k=0, augment=augment)
        return np.asarray(Image.open(path))[20:36, x0 : x0 + 4 * 18].astype(int)

    gray = views("auto")  # contrastive training's default views are grey
    assert np.abs(gray[..., 0] - gray[..., 1]).max() == 0 and np.abs(gray[..., 1] - gray[..., 2]).max() == 0
    none = views("none")
    assert np.abs(none[..., 0] - none[..., 2]).max() > 0  # the rendered colours, untouched
    with pytest.raises(UsageProblem, match="unknown"):
        preview(str(snapshot_dir), tmp_path / "x.png", size=16, n=4, augment="wild")
    assert not (tmp_path / "x.png").exists()


def test_a_worker_count_out_of_range_is_refused_before_any_process_starts(snapshot_dir, tmp_path):
    job = DatasetJob(str(snapshot_dir), str(tmp_path / "out"), per_program=1, size=16, fmt="imagefolder")
    for workers in (-1, 4 * len(os.sched_getaffinity(0)) + 1):
        with pytest.raises(UsageProblem, match="--workers between 0"):
            build_dataset(job, workers=workers)


def test_workers_unset_is_one_per_core_and_zero_renders_in_this_process(snapshot_dir, tmp_path, monkeypatch):
    pools = []
    real = static._in_pool

    def in_pool(job, units, workers):
        pools.append(workers)
        return real(job, units, workers)

    monkeypatch.setattr(static, "_in_pool", in_pool)
    job = DatasetJob(str(snapshot_dir), str(tmp_path / "zero"), per_program=1, size=16)
    assert build_dataset(job, workers=0)["images"] == len(SHADERS) and pools == []
    assert (tmp_path / "zero" / "metadata.jsonl").read_text().count("\n") == len(SHADERS)
    job = DatasetJob(str(snapshot_dir), str(tmp_path / "unset"), per_program=1, size=16)
    assert build_dataset(job)["images"] == len(SHADERS)
    assert pools == [min(len(os.sched_getaffinity(0)), len(SHADERS))]
