"""The paper's findings in miniature, on this machine: run the study, then write its results page.

    python experiments/findings.py run      # resumable: finished runs are kept and skipped
    python experiments/findings.py report   # experiments/RESULTS.md and plots from what has run

Corpus: the bundled examples plus, when ``../shared/samples`` is present, the real Shadertoy
programs there (read in place, never copied), imported into ``experiments/work/``, validated at
64x64, vetted with a policy sized for 64x64 (the 256x256 default would cost too much CPU here),
and frozen into one snapshot of every licence class: these are research runs on one machine,
nothing is redistributed. Questions (three seeds each, a fixed number of images seen):

* a shader-pretrained encoder against the same architecture at random init (Fashion-MNIST probe);
* more programs: 1, 4, 16, 64 (when there are that many) and all vetted programs;
* MixUp of 6 programs (Dirichlet, alpha 1) against none;
* supervised (program index as label) against contrastive (SupCon, SimCLR).

Knobs are environment variables so a faster machine can run the real sizes:
``STUDY_ARCH`` (alexnet_small), ``STUDY_SIZE`` (32), ``STUDY_STEPS`` (300), ``STUDY_BATCH`` (64),
``STUDY_SEEDS`` (3), ``STUDY_WORKERS`` (1), ``STUDY_PROBE_TRAIN`` (10000), ``STUDY_PROBE_TEST`` (2000).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "work"
RESULTS = HERE / "results"
SAMPLES = ROOT.parent / "shared" / "samples"

ARCH = os.environ.get("STUDY_ARCH", "alexnet_small")
SIZE = int(os.environ.get("STUDY_SIZE", "32"))
STEPS = int(os.environ.get("STUDY_STEPS", "300"))
BATCH = int(os.environ.get("STUDY_BATCH", "64"))
SEEDS = list(range(int(os.environ.get("STUDY_SEEDS", "3"))))
WORKERS = int(os.environ.get("STUDY_WORKERS", "1"))
PROBE_TRAIN = int(os.environ.get("STUDY_PROBE_TRAIN", "10000"))
PROBE_TEST = int(os.environ.get("STUDY_PROBE_TEST", "2000"))


def build_snapshot() -> Path:
    """Import, validate, vet and export the study's snapshot (each step is skipped once done)."""
    from corpus.db import open_catalogue
    from corpus.filters import LIMITED_USE_CLASSES, ProgramFilter
    from corpus.snapshots import create_snapshot, export_snapshot, list_snapshots
    from harvest.importing import import_path
    from render.validate import ValidateOptions, validate
    from render.vetting import Policy, vet

    out = WORK / "snapshot"
    if (out / "snapshot.json").exists():
        return out
    WORK.mkdir(parents=True, exist_ok=True)
    catalogue = open_catalogue(str(WORK / "catalogue.db"), create=True)
    sources = [
        ROOT / "examples" / n
        for n in ("shaders21k", "shadertoys.jsonl", "glslsandbox.jsonl", "gl-transitions.json", "repo")
    ]
    if SAMPLES.is_dir():
        sources += [
            SAMPLES / "shadertoy-api" / "2024-07.jsonl",
            SAMPLES / "shadertoys-dataset" / "20k_2014-02.jsonl",
            SAMPLES / "shadertoy-site" / "shaders",
        ]
    for path in sources:
        import_path(catalogue, path)
    options = ValidateOptions(workers=2, sizes=((64, 64),), compile_deadline=20.0, frame_deadline=5.0)
    report = validate(catalogue, options=options)
    print(f"validated {report.programs} programs: {dict(report.statuses)}", flush=True)
    policy = Policy(size=64, max_frame_ms_median=20.0)
    summary = vet(catalogue, policy, report.renderer or None)
    print(f"vetted {summary['vetted']} of {summary['programs']}", flush=True)
    if not any(s.name == "study" for s in list_snapshots(catalogue)):
        create_snapshot(
            catalogue,
            "study",
            ProgramFilter(vetted=True, include_duplicates=False),
            allow=LIMITED_USE_CLASSES,
        )
    export_snapshot(catalogue, "study", out)
    return out


def runs(n_programs: int) -> list[dict]:
    """Every training run of the study: (name, overrides)."""
    counts = [c for c in (1, 4, 16, 64) if c < n_programs] + [0]
    plan = []
    for seed in SEEDS:
        for c in counts:
            plan.append(
                {"name": f"simclr-n{c or 'all'}-s{seed}", "method": "simclr", "programs": c, "seed": seed}
            )
        plan.append({"name": f"simclr-mixup-s{seed}", "method": "simclr", "mixup_k": 6, "seed": seed})
        plan.append({"name": f"supervised-s{seed}", "method": "supervised", "seed": seed})
        plan.append({"name": f"supcon-s{seed}", "method": "supcon", "seed": seed})
    return plan


def probe_run(encoder, dim) -> dict:
    from pretrain.probe import probe

    return probe(encoder, dim, "fashion-mnist", size=SIZE, max_train=PROBE_TRAIN, max_test=PROBE_TEST, seed=0)


def run() -> None:
    import torch

    from pretrain.checkpoint import load_encoder
    from pretrain.models import build_backbone
    from pretrain.snapshot import open_snapshot
    from pretrain.train import TrainConfig, train

    torch.set_num_threads(max(1, (os.cpu_count() or 2) - WORKERS))
    snapshot = build_snapshot()
    n = len(open_snapshot(snapshot))
    RESULTS.mkdir(parents=True, exist_ok=True)
    for seed in SEEDS:
        target = RESULTS / f"random-init-s{seed}.json"
        if not target.exists():
            torch.manual_seed(seed)
            encoder, dim = build_backbone(ARCH)
            result = probe_run(encoder, dim) | {"name": target.stem, "method": "random-init", "seed": seed}
            target.write_text(json.dumps(result, indent=1))
            print(target.stem, result["accuracy"], flush=True)
    for spec in runs(n):
        target = RESULTS / f"{spec['name']}.json"
        if target.exists():
            continue
        out = WORK / "runs" / spec["name"]
        overrides = {k: v for k, v in spec.items() if k != "name"}
        config = TrainConfig.load(
            None,
            snapshot=str(snapshot),
            out=str(out),
            arch=ARCH,
            size=SIZE,
            steps=STEPS,
            batch_size=BATCH,
            workers=WORKERS,
            log_every=25,
            checkpoint_every=STEPS,
            **overrides,
        )
        started = time.perf_counter()
        summary = train(config, resume=(out / "ckpt.pt").exists())
        encoder, dim, _ = load_encoder(out / "ckpt.pt")
        result = probe_run(encoder, dim)
        result.update(spec, train=summary, programs_total=n, wall_s=round(time.perf_counter() - started, 1))
        target.write_text(json.dumps(result, indent=1))
        print(spec["name"], result["accuracy"], summary["images_per_s"], flush=True)


def report() -> None:
    """experiments/RESULTS.md and plots from the results folder."""
    import statistics

    results = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    if not results:
        sys.exit("no results yet: python experiments/findings.py run")

    def group(prefix: str) -> list[float]:
        return [100 * r["accuracy"] for r in results if r["name"].rsplit("-s", 1)[0] == prefix]

    def cell(values: list[float]) -> str:
        if not values:
            return "not run"
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.2f} ± {spread:.2f} (n={len(values)})"

    n_total = next((r["programs_total"] for r in results if "programs_total" in r), None)
    counts = sorted(
        {r.get("programs") or 0 for r in results if r["name"].startswith("simclr-n")},
        key=lambda c: c or 10**9,
    )
    lines = [
        "# The paper's findings in miniature",
        "",
        "Made by `python experiments/findings.py run` then `report`; see the script's docstring for",
        f"the set-up. Encoder `{ARCH}` at {SIZE}x{SIZE}, {STEPS} steps of {BATCH} images per run,",
        f"{n_total} vetted programs in the study snapshot; Fashion-MNIST linear probe on {PROBE_TRAIN}",
        f"training and {PROBE_TEST} test images (top-1 %, mean ± standard deviation over seeds).",
        "",
        "| run | top-1 % |",
        "| --- | --- |",
        f"| random init | {cell(group('random-init'))} |",
    ]
    for c in counts:
        label = c or "all"
        lines.append(f"| SimCLR, {label} programs | {cell(group(f'simclr-n{label}'))} |")
    lines += [
        f"| SimCLR + MixUp (K=6, α=1), all programs | {cell(group('simclr-mixup'))} |",
        f"| supervised (program index), all programs | {cell(group('supervised'))} |",
        f"| SupCon, all programs | {cell(group('supcon'))} |",
        "",
    ]
    try:
        from plots import accuracy_against_programs

        points = [(c or n_total, group(f"simclr-n{c or 'all'}")) for c in counts]
        base = group("random-init")
        accuracy_against_programs(
            HERE / "programs.png",
            {"SimCLR": [(n, v) for n, v in points if v]},
            statistics.mean(base) if base else None,
            "programs sampled (log scale)",
        )
        lines += ["![accuracy against the number of programs](programs.png)", ""]
    except ImportError:
        lines += ["(matplotlib is not installed: no plot)", ""]
    # the sections other studies wrote below this table (a "## " heading on) are kept
    page = HERE / "RESULTS.md"
    old = page.read_text() if page.exists() else ""
    kept = old[old.index("\n## ") :] if "\n## " in old else ""
    page.write_text("\n".join(lines) + kept + ("\n" if not kept else ""))
    print("\n".join(lines))


if __name__ == "__main__":
    {"run": run, "report": report}.get(sys.argv[1] if len(sys.argv) > 1 else "", lambda: sys.exit(__doc__))()
