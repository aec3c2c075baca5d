"""The training config: a dataclass read from defaults, a run's own config.json, a TOML file and
command-line options, in that order.

Apart from the training loop (:mod:`pretrain.train`, which imports torch) so that the command
line can show its defaults in ``--help`` without importing torch first.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, get_type_hints

from corpus.errors import UsageProblem


def max_workers() -> int:
    """The most rendering workers a command accepts here: 4 per core. Each is a process with a GL
    context (about 350 MB); past this a typo (200 for 2) only thrashes the machine."""
    return 4 * len(os.sched_getaffinity(0))


METHODS = ("supervised", "supcon", "simclr", "mocov2")
#: Samples a program when a snapshot has more programs than a worker's cache holds (pretrain.data):
#: a batch of 64 then compiles 8 programs instead of ~64.
SAMPLES_PER_PROGRAM = 8


def samples_per_program_for(programs: int, cache_programs: int) -> int:
    """The stream's group size when the config leaves it at 0: 1 when a worker's cache holds all
    ``programs`` sampled (each is compiled once a worker, then only rendered), else
    :data:`SAMPLES_PER_PROGRAM`."""
    return 1 if programs <= cache_programs else SAMPLES_PER_PROGRAM


#: The augmentation presets (pretrain.augment.PRESETS, named here so a config is checked
#: without importing torch; a test holds the two together).
AUGMENTATIONS = ("simclr", "light", "gray", "none")


@dataclass
class TrainConfig:
    snapshot: str = ""
    out: str = "runs/run"
    method: str = "supcon"
    arch: str = "resnet18"
    # The defaults are the CPU recipe (configs/cpu-quick.toml, experiments/RESULTS.md): SupCon,
    # ResNet-18 trained at 32 px for 6,000 steps of 64 images, AdamW, views in grey levels.
    size: int = 32
    steps: int = 6000
    batch_size: int = 64  # per process
    optimizer: str = "adamw"  # adamw or sgd (momentum 0.9)
    # given: > 0; left at 0: 0.1 x batch_size / 256 x world size for SGD, 1e-3 for AdamW
    lr: float = 0.0
    weight_decay: float = -1.0  # -1: the optimizer's default, 0.05 for AdamW and 1e-4 for SGD
    warmup_steps: int = -1  # -1: 5 % of the steps
    seed: int = 0
    workers: int = 2  # DataLoader workers, each with its own GL context
    programs: int = 0  # 0: sample every program; N: only N of them (a seeded choice): scaling studies
    # a file of program keys (source:id, one a line): sample only those (with programs: N of them)
    program_list: str = ""
    mixup_k: int = 0  # K >= 2 blends K programs with Dirichlet(mixup_alpha) weights (paper: 6, 1.0)
    mixup_alpha: float = 1.0
    time_min: float = 0.1
    time_max: float = 10.0
    # auto: gray for contrastive methods (the recipe's), light for supervised; "" (run configs from
    # before auto): simclr for contrastive methods, light for supervised; or a preset by name
    augment: str = "auto"
    temperature: float = 0.0  # 0: the method's default
    queue_size: int = 4096  # MoCo v2
    amp: bool = True  # mixed precision where the device supports it (CUDA)
    cache_programs: int = 64
    # m consecutive samples share a program (pretrain.data); 0: 1 where the cache holds every
    # program sampled, else SAMPLES_PER_PROGRAM. A run records the value it used.
    samples_per_program: int = 0
    log_every: int = 10
    checkpoint_every: int = 500
    device: str = "auto"  # torch device: auto (cuda if available), cpu, cuda
    gl_device: str = ""  # render device: "" (auto), cpu, gpu or an EGL index
    db: str = ""  # catalogue, when snapshot is a name rather than a folder
    plot: bool = True

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        *,
        base: dict[str, Any] | None = None,
        base_source: str = "the run's config.json",
        **overrides: Any,
    ) -> TrainConfig:
        """Defaults, then ``base`` (a resumed run's own config, read from ``base_source``), then a
        TOML file, then explicit overrides (CLI options that were given).

        Every key is checked against the fields' types where it comes in, so a wrong one is an
        error that names the key, the type it needs and the file it is in (exit 2).
        """
        layers: list[tuple[str, dict[str, Any]]] = []
        if path is not None:
            layers.append((str(path), _read_toml(Path(path))))
        layers.append(("the options given", {k: v for k, v in overrides.items() if v is not None}))
        values: dict[str, Any] = _typed(cls, base, base_source) if base else {}
        for source, layer in layers:
            given = _typed(cls, layer, source)
            # 0 stands for "the optimizer's default" only where nothing was given (a run's config)
            if "lr" in given and given["lr"] <= 0:
                raise UsageProblem(
                    f"{source}: lr must be > 0, not {given['lr']}",
                    hint="leave it out for the optimizer's default: "
                    "0.1 x batch_size / 256 for SGD, 1e-3 for AdamW",
                )
            values.update(given)
        config = cls(**values)
        config.check()
        return config

    def check(self) -> None:
        from pretrain.models import ARCHS

        if self.method not in METHODS:
            raise UsageProblem(f"unknown method {self.method!r}", hint=f"use one of: {', '.join(METHODS)}")
        if self.arch not in ARCHS:
            raise UsageProblem(f"unknown arch {self.arch!r}", hint=f"use one of: {', '.join(ARCHS)}")
        if not self.snapshot:
            raise UsageProblem("no snapshot given", hint="pass --snapshot NAME_OR_DIR")
        if self.size < 16 or self.steps < 1 or self.batch_size < 2:
            raise UsageProblem("size must be >= 16, steps >= 1 and batch_size >= 2")
        if self.log_every < 1 or self.checkpoint_every < 1 or self.programs < 0:
            raise UsageProblem("log_every and checkpoint_every must be >= 1, and programs >= 0")
        if self.samples_per_program < 0 or self.cache_programs < 1:
            raise UsageProblem(
                f"samples_per_program must be >= 0 and cache_programs >= 1, not "
                f"{self.samples_per_program} and {self.cache_programs}",
                hint="leave samples_per_program at 0 to choose it from the snapshot's size",
            )
        if self.lr < 0:
            raise UsageProblem(f"lr must be > 0, not {self.lr}")
        if self.mixup_alpha <= 0:
            raise UsageProblem(f"mixup_alpha must be > 0, not {self.mixup_alpha}", hint="the paper uses 1.0")
        if self.optimizer not in ("sgd", "adamw"):
            raise UsageProblem(f"unknown optimizer {self.optimizer!r}", hint="use sgd or adamw")
        self._check_ranges()
        most = max_workers()
        if not 0 <= self.workers <= most:
            raise UsageProblem(
                f"workers must be between 0 and {most} on this machine, not {self.workers}",
                hint="each worker is a process with its own GL context (about 350 MB); "
                "one or two per core is plenty",
            )

    def _check_ranges(self) -> None:
        """The keys whose wrong values would otherwise fail deep in a run (or never): each error
        names its key, so the config file or option to fix is plain."""
        gl = self.gl_device.lower()
        problems = (
            (
                not 0 <= self.time_min <= self.time_max,
                f"time_min ({self.time_min}) must be >= 0 and <= time_max ({self.time_max})",
                "the shader times samples are drawn between, e.g. time_min = 0.1, time_max = 10.0",
            ),
            (
                self.weight_decay < 0 and self.weight_decay != -1,
                f"weight_decay must be >= 0, not {self.weight_decay}",
                "for example: 0.05 for AdamW, 1e-4 for SGD (-1: the optimizer's default)",
            ),
            (
                self.cache_programs < 1,
                f"cache_programs must be >= 1, not {self.cache_programs}",
                "the compiled programs each loader worker keeps; the default is 64",
            ),
            (
                self.mixup_k < 0,
                f"mixup_k must be >= 0 (0 or 1: no MixUp), not {self.mixup_k}",
                "the paper uses 6",
            ),
            (
                self.augment not in ("", "auto", *AUGMENTATIONS),
                f"unknown augment {self.augment!r}",
                f"use one of: {', '.join(AUGMENTATIONS)} (or leave it out: the method's default)",
            ),
            (
                gl not in ("", "auto", "cpu", "gpu") and not gl.isdigit(),
                f"unknown gl_device {self.gl_device!r}",
                "use auto, cpu, gpu or an EGL device index (render info lists them)",
            ),
            (
                self.temperature < 0,
                f"temperature must be >= 0, not {self.temperature}",
                "0: the method's default",
            ),
            (
                self.queue_size < 1,
                f"queue_size must be >= 1, not {self.queue_size}",
                "MoCo v2's default: 4096",
            ),
            (
                self.warmup_steps < -1,
                f"warmup_steps must be >= -1, not {self.warmup_steps}",
                "-1: 5 % of steps",
            ),
        )
        for wrong, message, hint in problems:
            if wrong:
                raise UsageProblem(message, hint=hint)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UsageProblem(f"no config file {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageProblem(f"{path} cannot be read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageProblem(f"{path} is not valid TOML: {exc}") from exc


def _typed(cls: type, values: dict[str, Any], source: str) -> dict[str, Any]:
    """``values`` checked against the dataclass's field types (ints pass where a number is
    wanted, and become floats); an unknown key or a wrong type names ``source``."""
    types = get_type_hints(cls)
    unknown = sorted(set(values) - set(types))
    if unknown:
        raise UsageProblem(
            f"{source}: unknown config key(s): {', '.join(unknown)}",
            hint=f"known keys: {', '.join(types)}",
        )
    checked: dict[str, Any] = {}
    for key, value in values.items():
        wanted = types[key]
        if wanted is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        # bool is a subclass of int in Python, never in a config: `steps = true` is a mistake
        if type(value) is not wanted:
            raise UsageProblem(
                f"{source}: {key} must be {_TYPE_NAMES[wanted]}, not {json.dumps(value, default=str)}",
                hint=f"for example: {key} = {_example(cls, key)}",
            )
        checked[key] = value
    return checked


def _example(cls: type, key: str) -> str:
    """The field's default as TOML writes it, for the hint."""
    default = next(f.default for f in fields(cls) if f.name == key)
    return json.dumps(default)


#: What may change when a run is resumed: where and how fast it runs, how long, what it logs.
#: Everything else defines the run; changed, the resumed steps would not continue it.
RESUMABLE_CHANGES = frozenset(
    {
        "steps",
        "workers",
        "log_every",
        "checkpoint_every",
        "plot",
        "device",
        "gl_device",
        "db",
        "out",
        "snapshot",
        "cache_programs",
    }
)


def run_config(out: str | Path) -> dict[str, Any] | None:
    """The config a run folder was started with (its config.json), for ``--resume``."""
    path = Path(out) / "config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UsageProblem(
            f"{path} cannot be read: {exc}", hint="fix or remove it, or resume with --config"
        ) from exc


#: weight_decay -1 means the optimizer's default: these.
DEFAULT_WEIGHT_DECAY = {"adamw": 0.05, "sgd": 1e-4}


def setting(config: TrainConfig | dict, key: str) -> Any:
    """Setting ``key`` of a config, or of the dict a checkpoint or run folder holds; a key such a
    dict lacks reads as the field's default, as it does when that run resumes. One rule for
    everything that reports a run's settings (the model card, the probe's report)."""
    if isinstance(config, dict):
        return config[key] if key in config else getattr(TrainConfig(), key)
    return getattr(config, key)


def weight_decay_of(config: TrainConfig | dict) -> float:
    """The weight decay a run uses: ``weight_decay`` where given, else its optimizer's default."""
    decay = float(setting(config, "weight_decay"))
    return DEFAULT_WEIGHT_DECAY[setting(config, "optimizer")] if decay == -1 else decay


def augment_of(config: TrainConfig | dict) -> str:
    """The augmentation preset a run uses: ``auto`` (the default) is ``gray`` for contrastive
    methods, whose pretext could otherwise tell programs apart by palette alone while the probe's
    images are grey, and ``light`` for supervised; ``""``, what run configs from before ``auto``
    hold, keeps the preset they trained with (``simclr``, ``light`` for supervised)."""
    augment = setting(config, "augment")
    if augment in ("", "auto"):
        if setting(config, "method") == "supervised":
            return "light"
        return "gray" if augment == "auto" else "simclr"
    return augment


def peak_lr(config: TrainConfig | dict, world_size: int = 1) -> float:
    """The learning rate a run peaks at: ``lr`` where given, else the default its optimizer gets
    (SGD: 0.1 × images a step over all ranks / 256, the linear scaling rule; AdamW: 1e-3).
    ``lr`` 0 in a config means "the default", so whatever reports a run's settings says this."""
    if setting(config, "lr"):
        return float(setting(config, "lr"))
    if setting(config, "optimizer") == "sgd":
        return 0.1 * int(setting(config, "batch_size")) * world_size / 256
    return 1e-3
