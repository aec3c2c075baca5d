"""Checkpoints: one ``torch.save`` file holding everything a run needs to continue or be evaluated.

As in nanoGPT, a checkpoint carries the config it was trained with, the step, and the optimizer
state, so that ``--resume`` needs nothing else; ours adds the snapshot's manifest hash (which
programs it was trained on) and the encoder's weights on their own (``encoder``), so that probing
and exporting never need to rebuild the training method.

Layout (a dict): ``format`` (:data:`FORMAT`), ``config``, ``arch``, ``step``, ``encoder``
(``method.backbone.state_dict()``), ``method`` (the method's full state dict: heads, momentum
encoder, MoCo queue), ``optimizer``, ``scaler``, ``manifest_sha256``, ``rng``, ``extra``.

Files are written atomically (a temporary file in the same folder, flushed, then ``os.replace``),
so a run killed while saving leaves the previous checkpoint intact, and with the mode the umask
gives (0644 under the usual 022), as any other file the run writes. They are read with
``torch.load(weights_only=True)``: a checkpoint from elsewhere cannot run code when loaded, which is
why ``rng`` and ``extra`` must hold tensors and plain Python values only (no numpy objects).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from corpus.errors import InputFormatError, NotFoundError, UsageProblem
from corpus.paths import atomic_write
from pretrain.models import ARCHS, build_backbone, full_resnet_state_dict

FORMAT = "imageprograms-pretrain-1"
EXPORT_FORMATS = ("auto", "torchvision", "plain")


class CheckpointError(InputFormatError):
    """A file that is not a usable checkpoint of ours, or one that does not fit this run."""


def save_checkpoint(
    path: str | os.PathLike[str],
    *,
    config: dict[str, Any],
    step: int,
    method: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    scaler: Any = None,
    manifest_sha256: str,
    rng: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint to ``path`` atomically and return the path.

    ``method`` may be wrapped in DistributedDataParallel: the wrapped module is what gets saved, so
    that a checkpoint loads the same whatever the number of processes that wrote it.
    """
    method = getattr(method, "module", method)
    if "arch" not in config:
        raise UsageProblem("the checkpoint config has no 'arch'", hint="save the run's full config")
    state = {
        "format": FORMAT,
        "config": dict(config),
        "arch": config["arch"],
        "step": int(step),
        "encoder": method.backbone.state_dict(),
        "method": method.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "manifest_sha256": manifest_sha256,
        "rng": rng,
        "extra": extra,
    }
    return _atomic_save(state, Path(path))


def _atomic_save(obj: object, target: Path) -> Path:
    """``torch.save`` to ``target`` atomically, with the mode the umask gives (:mod:`corpus.paths`)."""
    return atomic_write(target, lambda fh: torch.save(obj, fh))


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and check a checkpoint; errors say what is wrong and what to do."""
    p = Path(path)
    if not p.is_file():
        raise NotFoundError(
            f"no checkpoint at {p}",
            hint="pass a file a `pretrain train --out DIR` run wrote (DIR/ckpt.pt) or check the path",
        )
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as exc:
        raise CheckpointError(
            f"{p} is not a checkpoint written by `pretrain train` ({type(exc).__name__})",
            hint="it may be truncated or another program's file; point at a checkpoint from `pretrain train`",
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(
            f"{p} is not a checkpoint of ours (format {found!r}, expected {FORMAT!r})",
            hint="an exported encoder (`pretrain export`) is for torchvision, not for probe or --resume",
        )
    missing = [k for k in ("config", "arch", "step", "encoder", "manifest_sha256") if k not in ckpt]
    if missing:
        raise CheckpointError(
            f"{p} lacks {', '.join(missing)}", hint="the file is damaged; use another checkpoint"
        )
    if ckpt["arch"] not in ARCHS:
        raise CheckpointError(
            f"{p} holds an encoder of unknown architecture {ckpt['arch']!r}",
            hint=f"this version knows {', '.join(ARCHS)}; use the version of imageprograms that wrote it",
        )
    return ckpt


def check_compatible(ckpt: dict[str, Any], *, arch: str, manifest_sha256: str) -> None:
    """Refuse to resume from a checkpoint of another architecture or another snapshot."""
    if ckpt["arch"] != arch:
        raise CheckpointError(
            f"the checkpoint holds an encoder of arch {ckpt['arch']}, this run trains {arch}",
            hint=f"resume with --arch {ckpt['arch']}, or start a new run in a new --out folder",
        )
    if ckpt["manifest_sha256"] != manifest_sha256:
        raise CheckpointError(
            f"the checkpoint was trained on another snapshot (manifest {ckpt['manifest_sha256'][:12]}..., "
            f"this one is {manifest_sha256[:12]}...)",
            hint="resume with the snapshot it was trained on, or start a new run in a new --out folder",
        )


def load_encoder(path: str | os.PathLike[str]) -> tuple[nn.Module, int, dict[str, Any]]:
    """The trained encoder of a checkpoint, in eval mode, with its feature size and training config."""
    return encoder_from_checkpoint(load_checkpoint(path), source=str(path))


def encoder_from_checkpoint(
    ckpt: dict[str, Any], source: str = "the checkpoint"
) -> tuple[nn.Module, int, dict[str, Any]]:
    """:func:`load_encoder` for a checkpoint already read with :func:`load_checkpoint`."""
    backbone, dim = build_backbone(ckpt["arch"])
    try:
        backbone.load_state_dict(ckpt["encoder"])
    except RuntimeError as exc:
        raise CheckpointError(
            f"{source}: the encoder's weights do not fit a {ckpt['arch']} ({str(exc).splitlines()[0]})",
            hint="the file is damaged or was written by an incompatible version",
        ) from None
    return backbone.eval(), dim, dict(ckpt["config"])


def check_export(out_path: str | os.PathLike[str], format: str) -> None:
    """Refuse an unknown format, or an --out that is a folder, before any checkpoint is read."""
    if format not in EXPORT_FORMATS:
        raise UsageProblem(
            f"unknown export format {format!r}", hint=f"choose one of: {', '.join(EXPORT_FORMATS)}"
        )
    if Path(out_path).is_dir():
        raise UsageProblem(
            f"--out {out_path} is a folder",
            hint=f"name the file to write, e.g. {Path(out_path) / 'encoder.pt'}",
        )


def write_encoder(
    ckpt: dict[str, Any],
    out_path: str | os.PathLike[str],
    *,
    format: str = "auto",
    source: str = "the checkpoint",
) -> dict[str, Any]:
    """Write the encoder of a checkpoint read with :func:`load_checkpoint`; return what was written.

    ``format``: ``torchvision`` writes a state dict that ``torchvision.models.resnet18()`` /
    ``resnet50()`` load strictly (the encoder plus a fresh 1000-class ``fc``, which pretraining never
    learns); ``plain`` writes the encoder's own state dict (``build_backbone(arch)`` loads it);
    ``auto`` is torchvision for ResNets and plain for ``alexnet_small``, which torchvision has no
    architecture for (the returned ``note`` says so).
    """
    check_export(out_path, format)
    backbone, dim, config = encoder_from_checkpoint(ckpt, source=source)
    arch = config.get("arch", getattr(backbone, "arch", None))
    is_resnet = arch in ("resnet18", "resnet50")
    note = None
    if format == "torchvision" and not is_resnet:
        raise UsageProblem(
            f"torchvision has no {arch} architecture, so this encoder cannot be exported for it",
            hint="export its plain state_dict (--format plain) and load it with "
            "pretrain.models.build_backbone",
        )
    if format == "plain" or not is_resnet:
        state = backbone.state_dict()
        written = "plain"
        if not is_resnet:
            note = (
                f"torchvision has no {arch}: wrote the encoder's plain state_dict; "
                f"load it with pretrain.models.build_backbone({arch!r})"
            )
    else:
        state = full_resnet_state_dict(backbone)
        written = "torchvision"
        note = f"load with torchvision.models.{arch}().load_state_dict(...); fc is untrained (1000 classes)"
    out = _atomic_save(state, Path(out_path))
    return {"path": str(out), "arch": arch, "format": written, "dim": dim, "keys": len(state), "note": note}
