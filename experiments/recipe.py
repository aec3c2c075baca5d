"""Issue 13.2: find a CPU recipe for ResNet-18 at 64 px that beats random init, then confirm it.

    python experiments/recipe.py proxy SNAPSHOT [VARIANT ...]   # the ablation, on the cheap proxy probe
    python experiments/recipe.py variants SNAPSHOT A,B [SEED ...] # variants, probed with the full protocol
    python experiments/recipe.py confirm-baseline [SEED ...]     # random init, full protocol
    python experiments/recipe.py confirm SNAPSHOT [SEED ...]     # the recipe, full protocol
    python experiments/recipe.py report                          # the tables, from the JSON files
    python experiments/recipe.py table [TAG]                     # a confirmation's table (markdown)

Every run writes one JSON file under ``experiments/results/recipe/`` (its config, training
summary, wall time, load average and probe report) and is skipped when that file exists, so the
script resumes where it stopped. Run it under ``nice -n 10`` on a shared machine.

The proxy probe is the protocol with 2,000 training and 2,000 test images and one probe seed,
reading layer2, layer3 and the last stage (layer4) from one pass; its random-init baselines (init
seeds 0 and 1, to show how far two random networks differ) are computed once. The confirmation is
the protocol itself (``pretrain probe``'s defaults: 10,000/10,000 images, 5 probe seeds), with
layer2 and layer3 read beside the last stage, for the checkpoint and the random-init baseline
alike. Training runs go to ``$RECIPE_RUNS`` (default ``/tmp/study13/runs``; checkpoints are not
kept in the repository); an interrupted run is started again from scratch.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "recipe"
RUNS = Path(os.environ.get("RECIPE_RUNS", "/tmp/study13/runs"))
RECIPE = ROOT / "configs" / "cpu-quick.toml"
#: Which version of the recipe a confirmation run is of (its files are named after it): v1 was
#: AdamW at 32 px in colour (+0.54 points), v2 the one that ships now.
TAG = os.environ.get("RECIPE_TAG", "v2")

PROXY = {"max_train": 2000, "max_test": 2000, "seeds": 1, "layers": ("layer2", "layer3", "last")}
FULL = {"layers": ("layer2", "layer3", "last")}

#: The ablation: each variant is the base (SupCon at 32 px, 300 steps of 64 images, SGD at its
#: default rate 0.025) with changes; every checkpoint is probed at 64 px, as the protocol wants.
BASE: dict[str, Any] = {"method": "supcon", "arch": "resnet18", "size": 32, "steps": 300, "batch_size": 64}
ADAMW_GRAY: dict[str, Any] = {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.05, "augment": "gray"}
VARIANTS: dict[str, dict[str, Any]] = {
    "base": {},
    "lr0.3": {"lr": 0.3},
    "adamw": {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.05},
    "simclr-lr0.3": {"method": "simclr", "lr": 0.3},
    "supervised-lr0.3": {"method": "supervised", "lr": 0.3},
    "lr0.3-t0.2": {"lr": 0.3, "temperature": 0.2},
    "lr0.3-light": {"lr": 0.3, "augment": "light"},
    "lr0.3-mixup6": {"lr": 0.3, "mixup_k": 6},
    "lr0.3-size64": {"lr": 0.3, "size": 64},
    "adamw-size64": {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.05, "size": 64},
    "adamw-simclr": {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.05, "method": "simclr"},
    "adamw-mixup6": {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.05, "mixup_k": 6},
    # second round: views in grey levels (the probe's images are grey), then size, length, MixUp
    "adamw-gray": ADAMW_GRAY,
    "adamw-gray-size64": ADAMW_GRAY | {"size": 64},
    "adamw-gray-steps1000": ADAMW_GRAY | {"steps": 1000},
    "adamw-gray-steps3000": ADAMW_GRAY | {"steps": 3000},
    "adamw-gray-steps6000": ADAMW_GRAY | {"steps": 6000},
    "adamw-gray-mixup6": ADAMW_GRAY | {"mixup_k": 6},
}


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Write a run's record whole or not at all (a killed study leaves no half file to skip)."""
    from corpus.paths import atomic_write

    text = (json.dumps(record, indent=2) + "\n").encode()
    atomic_write(path, lambda fh: fh.write(text))


def _summarise(report: dict[str, Any], name: str = "checkpoint") -> dict[str, float]:
    """{stage: linear accuracy %} of one model of a probe report."""
    return {stage: round(100 * r["linear"]["mean"], 2) for stage, r in report["results"][name].items()}


def baseline(init_seed: int, changes: dict[str, Any], tag: str) -> dict[str, Any]:
    """The random-init baseline's probe (cached): the same protocol as the checkpoints'."""
    from pretrain.probe import probe_checkpoint

    path = RESULTS / f"random-init-{tag}-i{init_seed}.json"
    if path.exists():
        return json.loads(path.read_text())
    t0, load0 = time.time(), _load()
    report = probe_checkpoint(
        None, "fashion-mnist", arch="resnet18", random_init=True, init_seed=init_seed, **changes
    )
    record = {
        "name": f"random-init-{tag}",
        "init_seed": init_seed,
        "probe": report,
        "linear": _summarise(report, "random-init"),
        "probe_wall_s": round(time.time() - t0, 1),
        "load": [load0, _load()],
    }
    write_record(path, record)
    print(f"random-init {tag} i{init_seed}: {record['linear']}", flush=True)
    return record


def running_rate(out: Path) -> float | None:
    """The median of the images/s a run logged over its intervals (metrics.jsonl): its speed while
    it ran, which a pause (a SIGSTOP while CI ran, a machine asleep) leaves alone where the
    summary's average over the whole wall does not. None where the run's folder is gone."""
    rates = []
    try:
        for line in (out / "metrics.jsonl").read_text().splitlines():
            try:
                rate = json.loads(line).get("images_per_s")
            except ValueError:  # a line cut short by a kill
                continue
            if isinstance(rate, int | float) and rate > 0:
                rates.append(rate)
    except OSError:
        return None
    return round(statistics.median(rates), 1) if rates else None


def train_and_probe(
    name: str,
    snapshot: str,
    overrides: dict[str, Any],
    changes: dict[str, Any],
    config_path: Path | None = None,
    results: Path = RESULTS,
) -> dict[str, Any]:
    """Train one run (``overrides`` over ``config_path``'s recipe) and probe it with the protocol
    and ``changes``; the record is cached as ``results/NAME.json``."""
    from pretrain.config import TrainConfig
    from pretrain.probe import probe_checkpoint
    from pretrain.train import train

    path = results / f"{name}.json"
    if path.exists():
        return json.loads(path.read_text())
    out = RUNS / name
    ckpt = out / "ckpt.pt"
    t0, load0 = time.time(), _load()
    if not (out / "summary.json").exists():
        if out.exists():  # an interrupted run: start it again
            import shutil

            shutil.rmtree(out)
        config = TrainConfig.load(config_path, snapshot=snapshot, out=str(out), **overrides)
        summary = train(config)
    else:
        summary = json.loads((out / "summary.json").read_text())
    train_wall, load1 = time.time() - t0, _load()
    t1 = time.time()
    report = probe_checkpoint(ckpt, "fashion-mnist", baseline="none", **changes)
    record = {
        "name": name,
        "overrides": overrides,
        "config": json.loads((out / "config.json").read_text()),
        "summary": summary,
        "running_images_per_s": running_rate(out),
        "train_wall_s": round(train_wall, 1),
        "probe_wall_s": round(time.time() - t1, 1),
        "load": [load0, load1, _load()],
        "probe": report,
        "linear": _summarise(report),
    }
    write_record(path, record)
    print(f"{name}: {record['linear']} (train {train_wall:.0f} s, load {record['load']})", flush=True)
    return record


def proxy(snapshot: str, names: list[str]) -> None:
    for seed in (0, 1):
        baseline(seed, PROXY, "proxy")
    for name in names or list(VARIANTS):
        train_and_probe(f"proxy-{name}", snapshot, {**BASE, **VARIANTS[name]}, PROXY)


def variants(snapshot: str, names: list[str], seeds: list[int]) -> None:
    """The ablation's second round: each variant trained once a seed and probed with the protocol
    itself (its test noise 0.36 points against the proxy's 0.9), against ``confirm-baseline``."""
    baseline(0, FULL, "full")
    for name in names:
        for seed in seeds:
            train_and_probe(f"full-{name}-s{seed}", snapshot, {**BASE, **VARIANTS[name], "seed": seed}, FULL)


def confirm(snapshot: str, seeds: list[int]) -> None:
    """The recipe's training seeds (each a run folder of its own: two processes may run disjoint
    seeds at once); ``confirm-baseline`` probes the random-init baseline once."""
    for seed in seeds or [0, 1, 2]:
        train_and_probe(f"confirm-{TAG}-s{seed}", snapshot, {"seed": seed}, FULL, config_path=RECIPE)


def report() -> None:
    """One line a run: linear top-1 % a stage, and its gain over the random-init baseline of the
    same probe (the mean of the two init seeds for the proxy)."""
    rows = {p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))}
    bases = {
        tag: [r["linear"] for n, r in rows.items() if n.startswith(f"random-init-{tag}")]
        for tag in ("proxy", "full")
    }
    for name, r in rows.items():
        tag = "proxy" if name.startswith(("proxy", "random-init-proxy")) else "full"
        base = {s: sum(b[s] for b in bases[tag]) / len(bases[tag]) for s in r["linear"]} if bases[tag] else {}
        cells = "  ".join(
            f"{s} {v:5.2f} ({v - base[s]:+.2f})" if s in base else f"{s} {v:5.2f}"
            for s, v in r["linear"].items()
        )
        train_s = f"train {r['train_wall_s']:.0f} s, " if "train_wall_s" in r else ""
        print(f"{name:26s} {cells}  [{train_s}probe {r['probe_wall_s']:.0f} s, load {r['load']}]")


def confirmation_table(tag: str) -> None:
    """The confirmation of recipe ``tag`` as a markdown table: every stage and probe, each training
    seed, mean ± sd over them, random init (mean ± sd over the init seeds probed) and the gain,
    with the gain over twice the larger of the two spreads (the issue's criterion)."""
    import statistics

    def spread(values: list[float]) -> float:
        return statistics.stdev(values) if len(values) > 1 else 0.0

    runs = [json.loads(p.read_text()) for p in sorted(RESULTS.glob(f"confirm-{tag}-s*.json"))]
    inits = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("random-init-full-i*.json"))]
    base = [r["probe"]["results"]["random-init"] for r in inits]
    columns = ["stage", "probe", *(f"seed {r['config']['seed']}" for r in runs), "mean ± sd"]
    columns += [f"random init ({len(base)} inits)", "gain", "gain / 2 sd"]
    print("| " + " | ".join(columns) + " |")
    print("| --- | --- |" + " --- |" * (len(runs) + 4))
    for stage, probes in base[0].items():
        for probe in probes:
            values = [100 * r["probe"]["results"]["checkpoint"][stage][probe]["mean"] for r in runs]
            randoms = [100 * b[stage][probe]["mean"] for b in base]
            gain = statistics.mean(values) - statistics.mean(randoms)
            sd = max(spread(values), spread(randoms))
            cells = [stage, probe, *(f"{v:.2f}" for v in values)]
            cells += [f"{statistics.mean(values):.2f} ± {spread(values):.2f}"]
            cells += [f"{statistics.mean(randoms):.2f} ± {spread(randoms):.2f}", f"{gain:+.2f}"]
            cells += [f"{gain / (2 * sd):.1f}" if sd else "–"]
            print("| " + " | ".join(cells) + " |")


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in ("proxy", "variants", "confirm", "confirm-baseline", "report", "table"):
        sys.exit(__doc__)
    if argv[0] == "report":
        report()
    elif argv[0] == "table":
        confirmation_table(argv[1] if len(argv) > 1 else TAG)
    elif argv[0] == "confirm-baseline":  # [INIT_SEED ...]: how far random inits differ
        for init_seed in [int(s) for s in argv[1:]] or [0]:
            baseline(init_seed, FULL, "full")
    elif argv[0] == "proxy":
        proxy(argv[1], argv[2:])
    elif argv[0] == "variants":  # SNAPSHOT NAME[,NAME...] [SEED ...]
        variants(argv[1], argv[2].split(","), [int(s) for s in argv[3:]] or [0])
    else:
        confirm(argv[1], [int(s) for s in argv[2:]])


if __name__ == "__main__":
    main(sys.argv[1:])
