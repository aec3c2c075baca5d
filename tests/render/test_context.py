"""Headless contexts: how several rendering processes share llvmpipe's threads."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from render.context import share_cores
from tests.conftest import ROOT


@pytest.fixture
def no_lp_threads(monkeypatch):
    monkeypatch.delenv("LP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))


def test_processes_get_an_equal_share_of_the_cores(no_lp_threads):
    assert share_cores(3) == 2
    assert os.environ["LP_NUM_THREADS"] == "2"


def test_a_single_core_share_rasterises_in_the_calling_thread(no_lp_threads):
    assert share_cores(32) == 0
    assert os.environ["LP_NUM_THREADS"] == "0"


def test_no_more_threads_than_a_frame_has_tiles(no_lp_threads, monkeypatch):
    assert share_cores(2, (256, 128)) == 4  # 8 tiles, 4 cores each
    monkeypatch.delenv("LP_NUM_THREADS")
    assert share_cores(1, (128, 100)) == 4  # 2 × 2 tiles
    monkeypatch.delenv("LP_NUM_THREADS")
    assert share_cores(1, (64, 64)) == 0  # one tile: one thread would only hand it over


def test_one_process_and_a_users_setting_are_left_alone(no_lp_threads, monkeypatch):
    assert share_cores(1) is None and "LP_NUM_THREADS" not in os.environ
    monkeypatch.setenv("LP_NUM_THREADS", "5")
    assert share_cores(4, (512, 512)) is None and os.environ["LP_NUM_THREADS"] == "5"


RENDER_AND_COUNT_THREADS = """
import os, sys
from render.context import share_cores
if sys.argv[1] == "share":
    share_cores(len(os.sched_getaffinity(0)), (64, 64))
from render.engine import Engine
engine = Engine(device="cpu")
if not engine.device.software:
    raise SystemExit("not llvmpipe")
engine.ctx.clear(0.5, 0.5, 0.5, 1.0)
engine.ctx.finish()
print(len(os.listdir("/proc/self/task")))
"""


def _threads(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != "LP_NUM_THREADS"}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(RENDER_AND_COUNT_THREADS), mode],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    if "not llvmpipe" in done.stderr:
        pytest.skip("the cpu device is not llvmpipe here")
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one core: llvmpipe starts one thread anyway")
def test_llvmpipe_starts_fewer_rasterizer_threads_once_cores_are_shared():
    # one process per core: each rasterises in its own thread instead of starting one per core
    assert _threads("share") < _threads("default")


def _has_gpu() -> bool:
    from render.context import create_context, device_info

    ctx = create_context()
    try:
        return not device_info(ctx).software
    finally:
        ctx.release()


def test_asking_for_a_gpu_where_there_is_none_says_so_with_its_own_code(tmp_path, capsys):
    """EGL works here but only with a software rasteriser: that is no missing library."""
    if _has_gpu():
        pytest.skip("this machine has a GPU")
    from corpus.db import open_catalogue
    from render.context import NoContextError
    from tests.render.helpers import run_render

    open_catalogue(str(tmp_path / "c.db"), create=True).close()
    for args in (
        ["info", "--device", "gpu"],
        ["validate", "--db", str(tmp_path / "c.db"), "--device", "gpu"],
    ):
        code, _, err = run_render(args, capsys)
        assert code == NoContextError.exit_code == 9, (args, err)
        assert "no GPU to render on" in err and "software (llvmpipe" in err, err
        assert "hint: leave out --device (or give --device cpu)" in err and "libegl1" not in err, err


class _FakeContext:
    def __init__(self, index: int, renderer: str) -> None:
        self.index = index
        self.info = {"GL_RENDERER": renderer}
        self.released = False

    def release(self) -> None:
        self.released = True


def _fake_devices(monkeypatch, renderers: list[str]) -> list[_FakeContext]:
    """EGL devices as a machine with these renderers lists them; every context made is kept."""
    import render.context as context

    made: list[_FakeContext] = []

    def fake_try(index):
        if index is None or index >= len(renderers):
            raise RuntimeError("no such EGL device")
        made.append(_FakeContext(index, renderers[index]))
        return made[-1]

    monkeypatch.setattr(context, "_try", fake_try)
    return made


@pytest.mark.parametrize(
    ("rank", "device"), [(None, 0), ("0", 0), ("1", 1), ("2", 3), ("3", 4), ("4", 0), ("5", 1)]
)
def test_each_torchrun_rank_renders_on_the_gpu_of_its_local_rank(monkeypatch, rank, device):
    from render.context import create_context

    made = _fake_devices(
        monkeypatch, ["NVIDIA H100", "NVIDIA H100", "llvmpipe (LLVM 15)", "NVIDIA H100", "NVIDIA H100"]
    )
    monkeypatch.delenv("IMAGEPROGRAMS_GL_DEVICE", raising=False)
    if rank is None:
        monkeypatch.delenv("LOCAL_RANK", raising=False)
    else:
        monkeypatch.setenv("LOCAL_RANK", rank)
    for choice in ("auto", "gpu"):
        ctx = create_context(choice)
        assert ctx.index == device, (choice, rank)
        assert all(c.released for c in made if c is not ctx), "every other context is released"
        made.clear()


def test_without_a_gpu_every_rank_renders_on_the_software_device(monkeypatch):
    from render.context import create_context

    made = _fake_devices(monkeypatch, ["llvmpipe (LLVM 15)"])
    monkeypatch.setenv("LOCAL_RANK", "3")
    ctx = create_context("auto")
    assert ctx.index == 0 and ctx.info["GL_RENDERER"].startswith("llvmpipe") and not ctx.released
    assert len(made) == 1
