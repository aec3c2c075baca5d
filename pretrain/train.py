"""The training loop: one config, a stream of rendered batches, a method, checkpoints, resume.

Kept in the spirit of nanoGPT's train.py: one function, readable top to bottom. Everything that
decides what a step sees is a function of (seed, step, rank): the batch (:mod:`pretrain.data`),
the augmentations (a generator seeded per step) and the learning rate (computed, not stateful).
A checkpoint holds the model, optimizer and scaler state, the step and the snapshot's manifest
hash, so ``--resume`` continues bit for bit, and a checkpoint from another snapshot or
architecture is refused. ``torchrun --nproc_per_node N`` runs it data-parallel
(DistributedDataParallel; gloo on CPU, NCCL on GPUs): each rank renders its own share.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from corpus.errors import ImageProgramsError, NotFoundError, UsageProblem
from corpus.paths import check_folder, make_folder
from pretrain.config import (
    RESUMABLE_CHANGES,
    TrainConfig,
    augment_of,
    peak_lr,
    samples_per_program_for,
    weight_decay_of,
)
from pretrain.stopping import StopRequest, TrainingInterrupted

if TYPE_CHECKING:
    from pretrain.snapshot import SnapshotData


def _check_resumed_config(saved: dict[str, Any], config: TrainConfig, step: int, out: Path) -> None:
    """Refuse a resume that would not continue the checkpointed run (the snapshot and the arch
    are checked against the checkpoint itself by ``check_compatible``)."""
    current = config.to_json()
    changed = sorted(
        k for k in saved if k not in RESUMABLE_CHANGES and k in current and saved[k] != current[k]
    )
    if changed:
        was = ", ".join(f"{k}={saved[k]!r}" for k in changed)
        now = ", ".join(f"{k}={current[k]!r}" for k in changed)
        raise UsageProblem(
            f"the run in {out} was trained with {was}; this resume asks for {now}",
            hint="drop those options (--resume reads them from the run's config.json), "
            "or start a new run in a new --out folder",
        )
    if config.steps <= step:
        raise UsageProblem(
            f"the run in {out} is already at step {step}, and --steps is {config.steps}",
            hint=f"pass --steps N with N > {step} to train further",
        )


def _choose_group_size(config: TrainConfig, sampled: int) -> None:
    """Fill in ``samples_per_program`` where it is 0 (auto), from the number of programs sampled
    and the cache: chosen once, then recorded in config.json and the checkpoint, so a resume
    (which may change ``cache_programs``) streams the same samples."""
    if not config.samples_per_program:
        config.samples_per_program = samples_per_program_for(sampled, config.cache_programs)


def lr_at(config: TrainConfig, step: int, world_size: int) -> float:
    """Linear warm-up then cosine decay to zero; a pure function of the step, so resuming needs no
    scheduler state."""
    base = peak_lr(config, world_size)
    warmup = config.warmup_steps if config.warmup_steps >= 0 else max(1, config.steps // 20)
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, config.steps - warmup)
    return base * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def program_subset(n: int, programs: int, seed: int, allowed: Sequence[int] | None = None):
    """Sampling weights that keep ``programs`` of the ``n`` programs (a seeded choice; of the
    ``allowed`` indices only, when given), or None for all. Labels stay the snapshot's indices, so
    runs over subsets share one label space."""
    import numpy as np

    pool = np.arange(n) if allowed is None else np.unique(np.asarray(allowed, dtype=np.int64))
    if allowed is None and (not programs or programs >= n):
        return None
    if programs and programs < len(pool):
        pool = pool[np.random.default_rng([seed, 7919]).permutation(len(pool))[:programs]]
    weights = np.zeros(n)
    weights[pool] = 1.0
    return weights


def read_program_list(path: str | Path, snapshot: SnapshotData) -> list[int]:
    """The snapshot indices of the programs a ``program_list`` file names (``source:id`` a line;
    blank lines and ``#`` comments skipped). A key the snapshot lacks is an error that names it."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise UsageProblem(
            f"cannot read the program list {path}: {exc.strerror or exc}",
            hint="pass a text file of program keys (source:id), one a line",
        ) from None
    keys = [line.split("#", 1)[0].strip() for line in lines]
    keys = [k for k in keys if k]
    index = {entry["program"]: i for i, entry in enumerate(snapshot.entries)}
    missing = [k for k in keys if k not in index]
    if missing or not keys:
        raise UsageProblem(
            f"the program list {path} names {len(missing)} program(s) not in snapshot "
            f"{snapshot.name}: {', '.join(missing[:3])}{' …' if len(missing) > 3 else ''}"
            if missing
            else f"the program list {path} names no program",
            hint='list keys as the snapshot\'s manifest.jsonl writes them (its "program" field)',
        )
    return sorted({index[k] for k in keys})


def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend=backend)
    rank = torch.distributed.get_rank() if world > 1 else 0
    return rank, world


def _device(config: TrainConfig, rank: int) -> torch.device:
    """The torch device the config asks for, checked here before anything is written: a device
    this torch cannot use is an error that says what it can use."""
    if config.device == "auto":
        if torch.cuda.is_available():  # the GPU of this rank on its machine (torchrun's LOCAL_RANK)
            local = int(os.environ.get("LOCAL_RANK", rank))
            return torch.device("cuda", local % torch.cuda.device_count())
        return torch.device("cpu")
    try:
        device = torch.device(config.device)
    except RuntimeError as exc:
        raise UsageProblem(f"unknown device {config.device!r}", hint="use auto, cpu, cuda or cuda:N") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else "a CUDA build that finds no GPU"
            raise UsageProblem(
                f"device {config.device!r} asked for, but this torch ({torch.__version__}) is {build}",
                hint="train with --device cpu (or auto), or install a CUDA build of torch on a machine "
                "with a GPU",
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageProblem(
                f"device {config.device!r} asked for, but this machine has "
                f"{torch.cuda.device_count()} GPU(s)",
                hint=f"use cuda:0 to cuda:{torch.cuda.device_count() - 1}, or cuda",
            )
    elif device.type != "cpu":
        raise UsageProblem(f"device {config.device!r} is not supported", hint="use auto, cpu or cuda")
    return device


def _step_generator(seed: int, step: int, rank: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed((seed * 1_000_003 + step) * 1_009 + rank)
    return g


class MetricsLog:
    """metrics.csv and metrics.jsonl in the run folder, appended to (a resumed run continues them)."""

    COLUMNS = ("step", "loss", "lr", "images_per_s", "skipped", "seconds")

    def __init__(self, out: Path, start_step: int) -> None:
        self.csv_path, self.json_path = out / "metrics.csv", out / "metrics.jsonl"
        if start_step == 0:
            self.csv_path.write_text(",".join(self.COLUMNS) + "\n")
            self.json_path.write_text("")
        else:  # drop lines from after the checkpoint we resume from
            self._truncate(start_step)

    def _truncate(self, start_step: int) -> None:
        if self.json_path.exists():
            keep = [
                ln for ln in self.json_path.read_text().splitlines() if json.loads(ln)["step"] <= start_step
            ]
            self.json_path.write_text("".join(ln + "\n" for ln in keep))
            with self.csv_path.open("w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(self.COLUMNS)
                for ln in keep:
                    row = json.loads(ln)
                    writer.writerow([row.get(c) for c in self.COLUMNS])

    def write(self, row: dict[str, Any]) -> None:
        with self.json_path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        with self.csv_path.open("a", newline="") as f:
            csv.writer(f).writerow([row.get(c) for c in self.COLUMNS])


def plot_loss(out: Path) -> Path | None:
    """loss.png from metrics.jsonl, when matplotlib is installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines() if ln]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5))
    # markers where there are few points: a short run logs one or two, which a bare line hides
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], marker="o" if len(rows) < 30 else None)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(out.name)
    fig.tight_layout()
    path = out / "loss.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def train(
    config: TrainConfig, *, resume: bool = False, progress=None, stop_at: int | None = None
) -> dict[str, Any]:
    """Train ``config.method`` on ``config.snapshot``; returns a summary (and writes the run folder:
    config.json, ckpt.pt, metrics.csv/jsonl, loss.png). ``stop_at`` ends this process after that
    step with a checkpoint (the schedule stays that of ``config.steps``): for time-sliced jobs,
    continued later with ``resume``."""
    from pretrain.augment import Augment, normalize
    from pretrain.checkpoint import check_compatible, load_checkpoint, save_checkpoint
    from pretrain.data import ShaderStream, StreamConfig
    from pretrain.loader import make_loader
    from pretrain.methods import build_method
    from pretrain.models import build_backbone
    from pretrain.snapshot import open_snapshot

    rank, world = _distributed()
    device = _device(config, rank)
    out = Path(config.out)
    ckpt_path = out / "ckpt.pt"
    # every check comes before the run folder is made: a run that cannot start leaves nothing
    check_folder(out)
    snapshot = open_snapshot(config.snapshot, db=config.db or None)
    allowed = read_program_list(config.program_list, snapshot) if config.program_list else None
    weights = program_subset(len(snapshot), config.programs, config.seed, allowed)
    sampled = len(snapshot) if weights is None else int(weights.sum())  # weights are 0 or 1

    torch.manual_seed(config.seed)
    backbone, dim = build_backbone(config.arch)
    method_kwargs: dict[str, Any] = {}
    if config.temperature:
        method_kwargs["temperature"] = config.temperature
    if config.method == "mocov2":
        method_kwargs["queue_size"] = config.queue_size
    method = build_method(config.method, backbone, dim, len(snapshot), **method_kwargs).to(device)
    params = [p for p in method.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(params, lr=0.0, momentum=0.9, weight_decay=weight_decay_of(config))
    else:
        optimizer = torch.optim.AdamW(params, lr=0.0, weight_decay=weight_decay_of(config))
    use_amp = config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if use_amp else None

    step = 0
    if resume:
        if not ckpt_path.exists():
            raise NotFoundError(f"nothing to resume: {ckpt_path} does not exist", hint="drop --resume")
        ckpt = load_checkpoint(ckpt_path)
        check_compatible(ckpt, arch=config.arch, manifest_sha256=snapshot.manifest_sha256)
        if "samples_per_program" not in (ckpt.get("config") or {}):  # a run from before groups
            config.samples_per_program = config.samples_per_program or 1
        _choose_group_size(config, sampled)
        _check_resumed_config(ckpt.get("config") or {}, config, int(ckpt["step"]), out)
        method.load_state_dict(ckpt["method"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if scaler is not None and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        step = int(ckpt["step"])
    elif ckpt_path.exists():
        raise UsageProblem(
            f"{out} already holds a run (ckpt.pt)",
            hint="pass --resume to continue it, or choose another --out",
        )
    resumed_from = step
    _choose_group_size(config, sampled)
    if config.method == "simclr":  # a group's other images are no negatives (pretrain.methods)
        method.exclude_same_program = config.samples_per_program > 1
    if rank == 0:
        make_folder(out)
        (out / "config.json").write_text(json.dumps(config.to_json(), indent=2) + "\n")

    model: torch.nn.Module = method
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            method, device_ids=[device.index] if device.type == "cuda" else None
        )
    stream = ShaderStream(
        snapshot,
        StreamConfig(
            size=config.size,
            batch_size=config.batch_size,
            seed=config.seed,
            time_min=config.time_min,
            time_max=config.time_max,
            mixup_k=config.mixup_k,
            mixup_alpha=config.mixup_alpha,
            cache_programs=config.cache_programs,
            samples_per_program=config.samples_per_program,
            device=config.gl_device or None,
        ),
        start_batch=step,
        rank=rank,
        world_size=world,
        weights=weights,
        max_batches=min(config.steps, stop_at or config.steps) - step,
    )
    augment = Augment(config.size, augment_of(config))
    views = 1 if config.method == "supervised" else 2
    log = MetricsLog(out, step) if rank == 0 else None
    saved_step = step if resume else None

    def checkpoint() -> None:
        nonlocal saved_step
        save_checkpoint(
            ckpt_path,
            config=config.to_json(),
            step=step,
            method=method,
            optimizer=optimizer,
            scaler=scaler,
            manifest_sha256=snapshot.manifest_sha256,
            extra={"snapshot": snapshot.name, "world_size": world},
        )
        saved_step = step

    started = time.perf_counter()
    first_batch_s = None
    seen, skipped, compiles, window_start, window_images = 0, 0, 0, time.perf_counter(), 0
    last_loss = float("nan")
    model.train()
    # Ctrl-C stops between steps, with a checkpoint (pretrain.stopping); under torchrun the ranks
    # would stop at different steps, so there it interrupts as before
    with StopRequest().listening(enabled=world == 1) as stop:
        for batch in make_loader(stream, config.workers):
            if stop.requested:  # while this batch was being made
                break
            if first_batch_s is None:
                first_batch_s = time.perf_counter() - started
            lr = lr_at(config, step, world)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x = batch["images"].to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
            g = _step_generator(config.seed, step, rank)
            inputs = {
                "views": [normalize(augment(x, g)) for _ in range(views)],
                "labels": batch["labels"].to(device),
            }
            if "mix_labels" in batch:
                inputs["mix_labels"] = batch["mix_labels"].to(device)
                inputs["mix_weights"] = batch["mix_weights"].to(device)
            with torch.autocast(device.type, enabled=use_amp):
                loss, metrics = model(inputs)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            if not torch.isfinite(loss):
                raise ImageProgramsError(
                    f"the loss became {loss.item()} at step {step}",
                    hint="lower --lr, or check the snapshot's images",
                )
            step += 1
            seen += len(x) * world
            window_images += len(x) * world
            skipped += int(batch["skipped"])
            compiles += int(batch["compiles"])
            last_loss = float(loss.detach())
            if rank == 0 and (step % config.log_every == 0 or step in (config.steps, stop_at)):
                now = time.perf_counter()
                row = {
                    "step": step,
                    "loss": round(last_loss, 5),
                    "lr": round(lr, 6),
                    "images_per_s": round(window_images / max(now - window_start, 1e-9), 2),
                    "skipped": skipped,
                    "compiles": compiles,  # programs compiled by this rank's loader so far
                    "seconds": round(now - started, 2),
                    **{k: round(float(v), 5) for k, v in metrics.items()},
                }
                log.write(row)
                window_start, window_images = now, 0
                if progress is not None:
                    progress(row, config.steps)
            if rank == 0 and (step % config.checkpoint_every == 0 or step in (config.steps, stop_at)):
                checkpoint()
            if stop.requested:
                break
    if stop.requested and step < min(config.steps, stop_at or config.steps):
        if rank == 0 and saved_step != step:
            checkpoint()
        raise TrainingInterrupted(out, step, config.steps)
    seconds = time.perf_counter() - started
    summary = {
        "out": str(out),
        "steps": step,
        "images_seen": step * config.batch_size * world,  # the run's, resumed parts included
        "resumed_from": resumed_from,
        "steps_this_run": step - resumed_from,
        "seconds": round(seconds, 2),
        "images_per_s": round(seen / seconds, 2) if seconds else None,
        "first_batch_s": round(first_batch_s or 0.0, 2),
        "final_loss": round(last_loss, 5) if math.isfinite(last_loss) else None,
        "skipped_programs": skipped,
        "compiles": compiles,  # programs this rank's loader compiled in this run
        "samples_per_program": config.samples_per_program,
        "programs": len(snapshot),
        "programs_sampled": sampled,
        "world_size": world,
    }
    if rank == 0:
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        if config.plot:
            plot_loss(out)
    if world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return summary
