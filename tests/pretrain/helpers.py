"""What several pretrain test modules share: the test shaders, a snapshot maker, an image folder
writer, skip markers and torchvision's import. Test modules import from here, never from each other."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from corpus.db import open_catalogue
from corpus.snapshots import create_snapshot, export_snapshot
from corpus.store import ProgramStore
from pretrain.evaldata import FASHION_MNIST_DIR
from tests.conftest import make_record

SHADERS = {
    "tGrad": """void mainImage(out vec4 c, in vec2 f) {
    c = vec4(f / iResolution.xy, 0.5 + 0.5 * sin(iTime), 1.0);
}""",
    "tRings": """void mainImage(out vec4 c, in vec2 f) {
    vec2 p = (2.0 * f - iResolution.xy) / iResolution.y;
    c = vec4(0.5 + 0.5 * cos(length(p) * 12.0 - iTime * 3.0 + vec3(0.0, 2.0, 4.0)), 1.0);
}""",
    "tStripes": """void mainImage(out vec4 c, in vec2 f) {
    float s = step(0.5, fract((f.x + f.y) / 12.0 + iTime * 0.4));
    c = vec4(mix(vec3(0.9, 0.2, 0.1), vec3(0.1, 0.3, 0.9), s), 1.0);
}""",
    "tDots": """void mainImage(out vec4 c, in vec2 f) {
    vec2 g = fract(f / 10.0 + vec2(iTime * 0.2, 0.0)) - 0.5;
    c = vec4(vec3(smoothstep(0.3, 0.2, length(g))) * vec3(0.2, 0.9, 0.4), 1.0);
}""",
}
#: Compiles nowhere: a pretraining stream must skip it and count it, never crash.
BROKEN = "void mainImage(out vec4 c, in vec2 f) { c = vec4(1.0) }"


def make_snapshot(root: Path, shaders: dict[str, str], name: str = "s") -> Path:
    """Store ``shaders`` (MIT-licensed) in a new catalogue under ``root`` and export snapshot
    ``name`` of them to ``root/name``; returns that folder."""
    root.mkdir(parents=True, exist_ok=True)
    cat = open_catalogue(str(root / "c.db"), create=True)
    store = ProgramStore(cat, via="test")
    records = [make_record(key, code, licence_field="MIT") for key, code in shaders.items()]
    with cat.session() as s:
        store.store(records, s.connection())
    create_snapshot(cat, name, allow=("noncommercial", "unknown", "copyleft", "proprietary"))
    out = root / name
    export_snapshot(cat, name, out)
    cat.close()
    return out


needs_fashion_mnist = pytest.mark.skipif(
    not (FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file(),
    reason="dataset-fashion-mnist is not installed",
)
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


def write_image_folder(root: Path, per_class: int = 10, size: tuple[int, int] = (20, 24)) -> Path:
    """Three classes of noisy flat colours; each class's last image has another size and shape."""
    rng = np.random.default_rng(0)
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            shape = (31, 17) if i == per_class - 1 else size
            pixels = np.clip(np.array(colour) + rng.normal(0, 20, (*shape, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i:03d}.png")
    return root


def import_torchvision():
    """torchvision, or a skip that says why.

    The torchvision release for torch 2.13.0 is 0.28.0 (the ``dev`` extra pins it), and PyPI has it
    only as a CUDA build: beside the CPU torch its C++ operators do not load, and its import then
    fails registering fake kernels for two of them (``operator torchvision::nms does not exist``).
    What these tests use, the ResNet definitions, needs none of its operators: so when they
    cannot load, the two operators' schemas are declared first and the import goes through.
    """
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        pytest.skip("torchvision is not installed (pip install -e '.[dev]')")
    if "torchvision" not in sys.modules:
        _declare_torchvision_ops(Path(spec.origin).parent)
    import torchvision

    return torchvision


_TORCHVISION_OPS: list = []  # a torch.library.Library must stay alive for its definitions to stay


def _declare_torchvision_ops(package: Path) -> None:
    import torch

    for library in package.glob("_C*.so"):
        try:
            torch.ops.load_library(str(library))
            return
        except (OSError, RuntimeError):
            pass
    lib = torch.library.Library("torchvision", "DEF")
    for op in ("nms", "qnms"):
        lib.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _TORCHVISION_OPS.append(lib)
