"""Real-image datasets for evaluating encoders: Fashion-MNIST and ImageFolder directories.

Fashion-MNIST comes from Debian's ``dataset-fashion-mnist`` package (the gzipped IDX files under
``/usr/share/datasets/fashion-mnist``), parsed here with gzip and numpy, so evaluation needs no
download. Any folder laid out as ``DIR/CLASS/IMAGE`` works too: with ``train/`` and ``test/`` (or
``val/``) subfolders those are the splits, otherwise a fixed 20 % of each class is held out for testing.

A split keeps images as they are stored (uint8 arrays or file paths) and turns only the requested
ones into model input, ``(n, 3, size, size)`` floats in [0, 1]: grayscale is repeated on three
channels, the shorter side is resized to ``size`` (bilinear, antialiased) and the centre cropped.
At 64 px all of Fashion-MNIST's training set as floats would be 2.9 GB; 47 MB as bytes.
"""

from __future__ import annotations

import functools
import gzip
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from corpus.errors import InputFormatError, NotFoundError, UsageProblem

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".pgm", ".tif", ".tiff")
SPLITS = ("train", "test")


def resize_center(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize float images ``(n, 3, h, w)`` so the shorter side is ``size``, then crop the centre square."""
    h, w = x.shape[-2:]
    if (h, w) != (size, size):
        scale = size / min(h, w)
        nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
        top, left = (nh - size) // 2, (nw - size) // 2
        x = x[..., top : top + size, left : left + size]
    return x.clamp(0, 1)


def _to_float_rgb(images: np.ndarray) -> torch.Tensor:
    """uint8 ``(n, h, w)`` or ``(n, h, w, c)`` to float ``(n, 3, h, w)`` in [0, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255)
    if x.ndim == 3:
        x = x[:, None]
    else:
        x = x.permute(0, 3, 1, 2)[:, :3]
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


@dataclass
class EvalSplit:
    """One split of an evaluation dataset: labels up front, images converted on request."""

    name: str
    labels: torch.Tensor
    classes: tuple[str, ...]
    arrays: np.ndarray | None = None
    paths: tuple[Path, ...] | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def images(self, indices: Sequence[int] | torch.Tensor, size: int) -> torch.Tensor:
        """Model input for the samples ``indices``: ``(n, 3, size, size)`` floats in [0, 1]."""
        idx = [int(i) for i in indices]
        if self.arrays is not None:
            return resize_center(_to_float_rgb(self.arrays[idx]), size)
        assert self.paths is not None
        if not idx:
            return torch.empty(0, 3, size, size)
        return torch.cat([resize_center(_read_image(self.paths[i]), size) for i in idx])


@dataclass
class EvalDataset:
    """A named pair of splits with the same classes."""

    name: str
    train: EvalSplit
    test: EvalSplit

    @property
    def num_classes(self) -> int:
        return len(self.train.classes)


def _read_image(path: Path) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            rgb = np.array(im.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise InputFormatError(
            f"cannot read image {path}: {exc}",
            hint="remove or replace the file; ImageFolder needs readable images",
        ) from None
    return _to_float_rgb(rgb[None])


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX file (the MNIST format): magic 0,0,type,ndim, big-endian dims, then the data."""
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise InputFormatError(
            f"cannot read {path}: {exc}",
            hint="reinstall it: apt-get install --reinstall dataset-fashion-mnist",
        ) from None
    if len(raw) < 4 + 4 * ndim or raw[0:2] != b"\0\0" or raw[2] != 0x08 or raw[3] != ndim:
        raise InputFormatError(
            f"{path} is not an IDX file of {ndim}-d unsigned bytes",
            hint="reinstall it: apt-get install --reinstall dataset-fashion-mnist",
        )
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise InputFormatError(
            f"{path} holds {data.size} bytes of data, its header promises {int(np.prod(dims))}",
            hint="the file is truncated; reinstall it: apt-get install --reinstall dataset-fashion-mnist",
        )
    return data.reshape(dims)


@functools.lru_cache(maxsize=4)
def _fashion_mnist_arrays(root: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    prefix = "train" if split == "train" else "t10k"
    folder = Path(root)
    images_path = folder / f"{prefix}-images-idx3-ubyte.gz"
    labels_path = folder / f"{prefix}-labels-idx1-ubyte.gz"
    if not images_path.is_file() or not labels_path.is_file():
        raise NotFoundError(
            f"Fashion-MNIST is not installed (no {images_path})",
            hint="apt-get install dataset-fashion-mnist, or probe on an ImageFolder directory instead",
        )
    images, labels = _read_idx(images_path, 3), _read_idx(labels_path, 1)
    if images.shape[0] != labels.shape[0]:
        raise InputFormatError(
            f"{folder}: {images.shape[0]} images but {labels.shape[0]} labels in the {split} split",
            hint="reinstall it: apt-get install --reinstall dataset-fashion-mnist",
        )
    return images, labels


def load_fashion_mnist(root: str | Path = FASHION_MNIST_DIR) -> EvalDataset:
    """Fashion-MNIST's 60,000 training and 10,000 test images (28x28 grayscale, 10 classes)."""
    splits = []
    for split in SPLITS:
        images, labels = _fashion_mnist_arrays(str(root), split)
        splits.append(
            EvalSplit(split, torch.from_numpy(labels.astype(np.int64)), FASHION_MNIST_CLASSES, arrays=images)
        )
    return EvalDataset("fashion-mnist", *splits)


def _class_files(folder: Path) -> dict[str, list[Path]]:
    classes = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(f for f in sub.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        if files:
            classes[sub.name] = files
    return classes


def load_image_folder(root: str | Path, test_fraction: float = 0.2) -> EvalDataset:
    """An ImageFolder directory (``CLASS/IMAGE`` files), split into train and test.

    With ``train/`` and ``test/`` (or ``val/``) subfolders those are used, with the training
    classes' names defining the label order. Otherwise each class's files, in name order, are
    shuffled with a fixed seed and ``test_fraction`` of them (at least one when a class has two or
    more) become the test split, so the same folder always gives the same test set.
    """
    folder = Path(root)
    if not folder.is_dir():
        raise NotFoundError(
            f"no dataset folder at {folder}", hint="pass fashion-mnist or an ImageFolder directory"
        )
    test_dir = next((folder / n for n in ("test", "val") if (folder / n).is_dir()), None)
    if (folder / "train").is_dir() and test_dir is not None:
        train_files, test_files = _class_files(folder / "train"), _class_files(test_dir)
        classes = tuple(train_files)
        unknown = sorted(set(test_files) - set(classes))
        if unknown:
            raise InputFormatError(
                f"{test_dir} has classes the training split lacks: {', '.join(unknown[:5])}",
                hint="give train/ a folder for every class in the test split",
            )
        train = [(f, i) for i, c in enumerate(classes) for f in train_files[c]]
        test = [(f, classes.index(c)) for c in test_files for f in test_files[c]]
    else:
        by_class = _class_files(folder)
        classes = tuple(by_class)
        gen = torch.Generator().manual_seed(0)
        train, test = [], []
        for i, c in enumerate(classes):
            files = by_class[c]
            order = torch.randperm(len(files), generator=gen).tolist()
            n_test = max(1, round(test_fraction * len(files))) if len(files) >= 2 else 0
            test += [(files[j], i) for j in order[:n_test]]
            train += [(files[j], i) for j in order[n_test:]]
    if len(classes) < 2 or not train or not test:
        raise InputFormatError(
            f"{folder} needs at least two class folders with images, and images to train and to test on",
            hint="lay it out as DIR/CLASS/IMAGE.png (two or more per class), or DIR/{train,test}/CLASS/",
        )

    def split(name: str, items: list[tuple[Path, int]]) -> EvalSplit:
        labels = torch.tensor([label for _, label in items], dtype=torch.long)
        return EvalSplit(name, labels, classes, paths=tuple(f for f, _ in items))

    return EvalDataset(folder.name, split("train", train), split("test", test))


def load_eval_dataset(name_or_path: str | Path) -> EvalDataset:
    """``fashion-mnist`` (the Debian package) or the path of an ImageFolder directory."""
    if str(name_or_path) == "fashion-mnist":
        return load_fashion_mnist()
    path = Path(name_or_path)
    if not path.exists():
        raise UsageProblem(
            f"unknown dataset {str(name_or_path)!r}: not 'fashion-mnist' and no such folder",
            hint="pass --dataset fashion-mnist or the path of an ImageFolder directory",
        )
    return load_image_folder(path)
