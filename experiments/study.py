"""Issue 13.3 and 13.4: the paper's findings, and what a licence-clean corpus costs, on real programs.

    python experiments/study.py lists SNAPSHOT DB          # the program lists the groups train on
    python experiments/study.py run SNAPSHOT GROUP[:RUN] [SEED ...]   # RUN: one of the group's runs
    python experiments/study.py report                     # tables, plots, experiments/RESULTS.md

SNAPSHOT is an exported snapshot of every vetted program of the real corpus (``corpus snapshot
create vetted-all --vetted --allow noncommercial``, then ``corpus snapshot export``); DB the
catalogue it came from (its profiles give the diversity score). Every run is the CPU recipe
(``configs/cpu-quick.toml``: SupCon, ResNet-18 at 32 px, grey views, AdamW) for ``STUDY_STEPS``
steps of 64 images (default 1,000: 64,000 images, the same for every run, so groups compare at a
fixed number of images), with one change, probed with the protocol (``probe-v2``: 10,000/10,000
Fashion-MNIST images at 64 px; its whole-pool linear probe at ``layer2``, the protocol's stage,
one probe seed since the whole-pool probe reads the same images whatever the seed) against the
same network at random init (``recipe.py``'s cached baseline).

Groups (a run a training seed; seeds default to 0 and 1):

* ``programs``: 1, 10, 100, 1,000 and all programs (``--programs N``: a seeded choice per seed);
* ``licence``: the permissive and public-domain programs (``clean``), as many non-commercial ones
  chosen at random (``nc``), and all;
* ``diversity``: the top third of the programs by a diversity score against a random third;
* ``mixup``: MixUp of 2 and 6 programs (Dirichlet, alpha 1) against none;
* ``methods``: SimCLR, supervised (program index) and MoCo v2 against SupCon; supervised on 100
  programs too (against ``programs-100``);
* ``length``: 10 programs against all at ``STUDY_LONG_STEPS`` (default 4,000 steps: 256,000
  images), whatever ``STUDY_STEPS`` says: whether the number of programs starts to matter when the
  images do not limit the run.

The diversity score of a program is the mean of its percentile ranks, among the snapshot's
programs, of three vetting statistics of its 256x256 profile: ``diversity`` (how far its frames at
different times are apart), ``colourfulness`` (Hasler and Süsstrunk) and ``entropy`` (of its
colour histogram). Runs write ``results/study/NAME.json`` and are skipped once written, so the
script resumes; run it under ``nice -n 10`` on a shared machine. ``report`` adds the median
images/s to a record written before it was recorded, from the run's folder while that exists.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

from plots import accuracy_against_programs
from recipe import FULL, HERE, RECIPE, baseline, running_rate, train_and_probe, write_record
from recipe import RESULTS as RECIPE_RESULTS

RESULTS = HERE / "results" / "study"
LISTS = RESULTS / "lists"
STEPS = int(os.environ.get("STUDY_STEPS", "1000"))
#: The probe: the protocol's images and stage; one probe seed (the whole-pool linear probe reads
#: the same images whatever the seed) and only the 100-shot probe (1-shot's noise would drown these
#: gaps). Features stop at layer2: half the cost of a whole pass.
PROBE = {"layers": ("auto",), "seeds": 1, "few_shot": (100,)}
SCORE_STATS = ("diversity", "colourfulness", "entropy")
COUNTS = (1, 10, 100, 1000, 0)  # 0: all
LONG_STEPS = int(os.environ.get("STUDY_LONG_STEPS", "4000"))
BEGIN, END = "<!-- study:begin -->", "<!-- study:end -->"


def _entries(snapshot: str) -> list[dict[str, Any]]:
    from pretrain.snapshot import open_snapshot

    return open_snapshot(snapshot).entries


def _write_list(name: str, keys: list[str], why: str) -> None:
    LISTS.mkdir(parents=True, exist_ok=True)
    (LISTS / f"{name}.txt").write_text(f"# {why} ({len(keys)} programs)\n" + "".join(f"{k}\n" for k in keys))


def _percentiles(values: list[float]) -> list[float]:
    """Each value's percentile rank in ``values`` (ties share their mean rank), 0 … 1."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 / max(1, len(values) - 1)
        i = j + 1
    return ranks


def diversity_scores(snapshot: str, db: str) -> dict[str, float]:
    """{program key: score} for the snapshot's programs (see the module docstring)."""
    from corpus.db import open_catalogue
    from corpus.filters import ProgramFilter
    from corpus.validations import vetting_inputs

    keys = {e["program"] for e in _entries(snapshot)}
    stats: dict[str, dict[str, float]] = {}
    catalogue = open_catalogue(db)
    for item in vetting_inputs(catalogue, None, ProgramFilter(vetted=True, include_duplicates=True)):
        if item["program"] not in keys:
            continue
        largest = max(item["profiles"], key=lambda p: p["width"] * p["height"], default=None)
        if largest is not None:
            stats[item["program"]] = {s: float(largest[s]) for s in SCORE_STATS}
    catalogue.close()
    missing = keys - set(stats)
    if missing:
        sys.exit(f"{len(missing)} programs of {snapshot} have no profile in {db}, e.g. {sorted(missing)[:3]}")
    programs = sorted(stats)
    ranks = {s: _percentiles([stats[p][s] for p in programs]) for s in SCORE_STATS}
    return {p: statistics.mean(ranks[s][i] for s in SCORE_STATS) for i, p in enumerate(programs)}


def make_lists(snapshot: str, db: str) -> None:
    """The program lists of the licence and diversity groups, with the figures behind them."""
    entries = _entries(snapshot)
    from corpus.snapshots import DEFAULT_CLASSES  # what a snapshot takes without --allow

    clean = [e["program"] for e in entries if e["licence_class"] in DEFAULT_CLASSES]
    nc = [e["program"] for e in entries if e["licence_class"] == "noncommercial"]
    _write_list("clean", clean, "permissive and public-domain programs of the snapshot")
    _write_list("nc", nc, "non-commercial programs of the snapshot (runs take as many as clean has)")
    scores = diversity_scores(snapshot, db)
    ranked = sorted(scores, key=lambda k: (-scores[k], k))
    third = len(ranked) // 3
    _write_list("diverse", ranked[:third], f"top third by diversity score ({', '.join(SCORE_STATS)})")
    summary = {
        "snapshot": snapshot,
        "programs": len(entries),
        "clean": len(clean),
        "nc": len(nc),
        "third": third,
        "score_top_third_min": round(scores[ranked[third - 1]], 4),
        "clean_mean_score": round(statistics.mean(scores[k] for k in clean), 4),
        "nc_mean_score": round(statistics.mean(scores[k] for k in nc), 4),
    }
    (LISTS / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


#: The recipe unchanged on every program: one run a seed that the programs, licence, mixup and
#: methods groups all compare against (its name says so).
RECIPE_RUN = {"recipe-all": {}}


def group_runs(group: str) -> dict[str, dict[str, Any]]:
    """{run name without its seed: the overrides of the recipe} of one group."""
    summary = json.loads((LISTS / "summary.json").read_text())
    if group == "programs":
        return {f"programs-{n}": {"programs": n} for n in COUNTS if n} | RECIPE_RUN
    if group == "licence":
        return {
            "licence-clean": {"program_list": str(LISTS / "clean.txt")},
            "licence-nc": {"program_list": str(LISTS / "nc.txt"), "programs": summary["clean"]},
        } | RECIPE_RUN
    if group == "diversity":
        return {
            "diversity-top": {"program_list": str(LISTS / "diverse.txt")},
            "diversity-random": {"programs": summary["third"]},
        }
    if group == "mixup":
        return {"mixup-2": {"mixup_k": 2}, "mixup-6": {"mixup_k": 6}} | RECIPE_RUN
    if group == "methods":
        # supervised classification of program identity sees each of all the programs ~5 times in
        # 64,000 images, so it is run on 100 programs too (640 images each), beside programs-100
        methods = {f"method-{m}": {"method": m} for m in ("simclr", "supervised", "mocov2")}
        return methods | {"method-supervised-p100": {"method": "supervised", "programs": 100}} | RECIPE_RUN
    if group == "length":
        return {
            name: {"steps": LONG_STEPS, **o}
            for name, o in ({"programs-10": {"programs": 10}} | RECIPE_RUN).items()
        }
    sys.exit(f"unknown group {group!r}: programs, licence, diversity, mixup, methods or length")


def run(snapshot: str, group: str, seeds: list[int]) -> None:
    group, _, only = group.partition(":")
    runs = {name: o for name, o in group_runs(group).items() if only in ("", name)}
    if not runs:
        sys.exit(f"{group!r} has no run {only!r}: {', '.join(group_runs(group))}")
    baseline(0, FULL, "full")  # the random-init baseline, cached by recipe.py
    for seed in seeds:
        for name, overrides in runs.items():
            config = {"steps": STEPS, "seed": seed, **overrides}
            train_and_probe(
                f"{name}-steps{config['steps']}-s{seed}",
                snapshot,
                config,
                PROBE,
                config_path=RECIPE,
                results=RESULTS,
            )


#: The order of the report's rows: by group, the recipe unchanged between the groups it anchors.
ORDER = ("programs-", "recipe-all-", "licence-", "diversity-", "mixup-", "method-")


def _rows() -> dict[str, list[dict[str, Any]]]:
    """{run name without its seed: its records}, by group, and by programs sampled within a group."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(RESULTS.glob("*.json")):
        record = json.loads(path.read_text())
        if record.get("running_images_per_s") is None:  # a record from before the field: backfill it
            record["running_images_per_s"] = running_rate(Path(record["summary"]["out"]))
            if record["running_images_per_s"] is not None:
                write_record(path, record)
        rows.setdefault(record["name"].rsplit("-s", 1)[0], []).append(record)

    def key(item: tuple[str, list[dict[str, Any]]]) -> tuple[int, int, str]:
        name, records = item
        group = next((i for i, prefix in enumerate(ORDER) if name.startswith(prefix)), len(ORDER))
        return group, records[0]["summary"]["programs_sampled"], name

    return dict(sorted(rows.items(), key=key))


def _cell(values: list[float], base: float) -> str:
    mean = statistics.mean(values)
    spread = f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else ""
    return f"{mean:.2f}{spread} ({mean - base:+.2f})"


#: The table's probes at the protocol's stage: (name in a probe report, column heading).
PROBES = (("linear", "linear"), ("100-shot", "100-shot"), ("knn", "k-NN"))


def _accuracy(record: dict[str, Any], model: str, probe: str) -> float:
    """Top-1 % of ``probe`` at layer2 for ``model`` (checkpoint or random-init) in a run's record."""
    return 100 * record["probe"]["results"][model]["layer2"][probe]["mean"]


def report() -> None:
    """Print the tables and write them, with plots, into experiments/RESULTS.md between markers."""
    inits = [json.loads(p.read_text()) for p in sorted(RECIPE_RESULTS.glob("random-init-full-i*.json"))]
    base = {probe: statistics.mean(_accuracy(i, "random-init", probe) for i in inits) for probe, _ in PROBES}
    base_record = {"layer2": base["linear"]}
    rows = _rows()
    steps = {r["summary"]["steps"] for records in rows.values() for r in records}
    others = sorted(steps - {STEPS})
    longer = f" (the `length` rows: {' and '.join(f'{n:,}' for n in others)} steps)" if others else ""
    lines = [
        BEGIN,
        "## The paper's findings and the licence study on real programs (issues 13.3, 13.4)",
        "",
        "Made by `python experiments/study.py run SNAPSHOT GROUP SEEDS`, then `report`; the set-up is in",
        "the script's docstring. Snapshot: every vetted program of `../shared/corpus` (13,192).",
        f"Every run: the CPU recipe for {STEPS:,} steps of 64 images ({STEPS * 64:,} images){longer},",
        "one change, probed at the protocol's stage (layer2) with the protocol's images (probe-v2:",
        "10,000/10,000 Fashion-MNIST images at 64 px): the whole-pool linear probe, the 100-shot linear",
        "probe (one probe seed) and k-NN (k=20); top-1 %, mean ± standard deviation over the n training",
        f"seeds, and in brackets the gain over random init (the mean of {len(inits)} init seeds: linear",
        f"{base['linear']:.2f}, 100-shot {base['100-shot']:.2f}, k-NN {base['knn']:.2f}). Images/s:",
        "training's median over the intervals a run logged, mean over seeds (a pause while CI ran is",
        "left out; time shared with other work on this 2-core machine is not; `*`: the average over",
        "the whole wall, for a run whose log is gone).",
        "",
        "| run | programs sampled | n | " + " | ".join(f"{h} % (gain)" for _, h in PROBES) + " | images/s |",
        "| --- | --- | --- | " + " | ".join("---" for _ in PROBES) + " | --- |",
    ]
    for name, records in rows.items():
        cells = [
            _cell([_accuracy(r, "checkpoint", probe) for r in records], base[probe]) for probe, _ in PROBES
        ]
        speed = statistics.mean(
            r.get("running_images_per_s") or r["summary"]["images_per_s"] for r in records
        )
        walls = "*" if any(r.get("running_images_per_s") is None for r in records) else ""
        sampled = records[0]["summary"]["programs_sampled"]
        lines.append(f"| {name} | {sampled} | {len(records)} | {' | '.join(cells)} | {speed:.0f}{walls} |")
    lines += ["", *plots(rows, base_record), END]
    text = "\n".join(lines)
    print(text)
    page = HERE / "RESULTS.md"
    old = page.read_text()
    if BEGIN in old and END in old:
        new = old[: old.index(BEGIN)] + text + old[old.index(END) + len(END) :]
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    page.write_text(new)


def plots(rows: dict[str, list[dict[str, Any]]], base: dict[str, float]) -> list[str]:
    """Accuracy against the number of programs, and against the licence and diversity sets."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return ["(matplotlib is not installed: no plots)", ""]
    out = []
    by_images: dict[int, list[tuple[int, list[float]]]] = {}  # a line per length of training
    for name, r in rows.items():
        if name.startswith(("programs-", "recipe-all-")):
            by_images.setdefault(r[0]["summary"]["images_seen"], []).append(
                (r[0]["summary"]["programs_sampled"], [x["linear"]["layer2"] for x in r])
            )
    if by_images:
        accuracy_against_programs(
            HERE / "study-programs.png",
            {f"SupCon recipe, {n:,} images": sorted(p) for n, p in sorted(by_images.items())},
            base["layer2"],
            "programs sampled (log scale); layer2 linear probe",
        )
        out += ["![accuracy against the number of programs](study-programs.png)", ""]
    # the sets compare at the study's number of images (a longer run of all programs is not one)
    sets = [
        (name, [x["linear"]["layer2"] for x in r])
        for name, r in rows.items()
        if name.startswith(ORDER[1:]) and r[0]["summary"]["steps"] == STEPS
    ]
    if sets:
        fig, ax = plt.subplots(figsize=(7, 0.4 * len(sets) + 1.4))
        labels = [name.rsplit("-steps", 1)[0].replace("recipe-all", "all (the recipe)") for name, _ in sets]
        gains = [statistics.mean(v) - base["layer2"] for _, v in sets]
        # a run far below random init (supervised on every program) would squash the others'
        # bars: the axis stops at -2 points and such a bar says its value at the edge
        left = max(min(gains) - 0.5, -2.0)
        errors = [statistics.stdev(v) if len(v) > 1 else 0 for _, v in sets]
        ax.barh(
            labels,
            [max(g, left) for g in gains],
            xerr=errors,
            capsize=3,
            color=["tab:grey" if label.startswith("all") else "tab:blue" for label in labels],
        )
        for y, (gain, error, (_, values)) in enumerate(zip(gains, errors, sets, strict=True)):
            text = f"{gain:+.2f}" + (f" (n={len(values)})" if len(values) > 1 else "")
            if gain < left:
                ax.text(left + 0.05, y, f"{gain:+.1f}, off the scale", va="center", color="white", fontsize=8)
            else:
                ax.text(max(gain, 0) + error + 0.08, y, text, va="center", fontsize=8)
        ax.set_xlim(left, max(gains) + 1.4)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.invert_yaxis()
        ax.set_xlabel(
            "gain over random init, points\n(layer2 linear probe; error bars: seed std where n > 1)"
        )
        fig.tight_layout()
        fig.savefig(HERE / "study-sets.png", dpi=110)
        plt.close(fig)
        out += [
            "![gain over random init of each licence set, diversity set, MixUp and method](study-sets.png)",
            "",
        ]
    return out


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in ("lists", "run", "report"):
        sys.exit(__doc__)
    if argv[0] == "lists":
        make_lists(argv[1], argv[2])
    elif argv[0] == "run":
        run(argv[1], argv[2], [int(s) for s in argv[3:]] or [0, 1])
    else:
        report()


if __name__ == "__main__":
    main(sys.argv[1:])
