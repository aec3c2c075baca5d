"""What a training stream draws: image size, batch size, seed, times, MixUp, grouping, device.

Its own module so that :mod:`pretrain.data` (the stream) and :mod:`pretrain.loader` (its batches
in shared memory) both read it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class StreamConfig:
    size: int = 64
    batch_size: int = 64
    seed: int = 0
    time_min: float = 0.1
    time_max: float = 10.0
    mixup_k: int = 0  # 0 or 1: no MixUp; K >= 2: blend K programs with Dirichlet(alpha) weights
    mixup_alpha: float = 1.0
    cache_programs: int = 64  # compiled programs each worker keeps
    samples_per_program: int = 1  # m: consecutive samples that share a program (module docstring)
    device: str | None = None  # GL device: auto, cpu, gpu, or an EGL index
