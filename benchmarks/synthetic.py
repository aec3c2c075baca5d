"""Synthetic catalogues for benchmarks, grown from the bundled examples.

Each synthetic program is one of the examples' Shadertoy image passes with its numeric
constants and a few identifiers changed at random and helper functions appended until it is
about 2 KB (the median of real Shadertoy code); about one in ten gets a licence header, about one
in twenty is a near-copy of an earlier one. Records are written in the shadertoys JSON-lines
format so that the real importer reads them.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
_NUMBER = re.compile(r"\b\d+\.\d+\b")
HEADERS = [
    "// SPDX-License-Identifier: MIT\n",
    "// Copyright (c) 2021 Someone\n// Licensed under the MIT License.\n",
    "// License Creative Commons Attribution-NonCommercial-ShareAlike 3.0 Unported License.\n",
    "// CC0: https://creativecommons.org/publicdomain/zero/1.0/\n",
    "/* This work is licensed under a Creative Commons Attribution 4.0 International License. */\n",
    "// Released into the public domain.\n",
]
TAGS = ["fractal", "noise", "tunnel", "raymarching", "2d", "plasma", "sdf", "waves", "color", "abstract"]
WORDS = ["neon", "tunnel", "plasma", "glow", "waves", "storm", "crystal", "spiral", "dust", "ocean", "grid"]


def example_image_codes() -> list[str]:
    """The examples' Shadertoy image passes, comments removed: the examples state a licence far
    more often than real shaders do, and the synthetic headers below set that share instead."""
    from corpus.dedup import strip_comments

    codes: list[str] = []
    for line in (EXAMPLES / "shadertoys.jsonl").read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        if rec.get("image_code") and "mainImage" in rec["image_code"]:
            codes.append(rec["image_code"])
    for path in sorted((EXAMPLES / "shaders21k" / "shadertoy").rglob("*.fragment")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        shader = doc.get("Shader", doc)
        for rp in shader.get("renderpass", []):
            if rp.get("type") == "image" and "for(;;)" not in rp.get("code", ""):
                codes.append(rp["code"])
    if not codes:
        raise SystemExit("no example shaders found under examples/")
    return [strip_comments(c) for c in codes]


def _mutate(code: str, rng: random.Random) -> str:
    return _NUMBER.sub(lambda m: f"{float(m.group()) * rng.uniform(0.5, 1.5):.3f}", code)


def _helper(rng: random.Random, n: int) -> str:
    a, b, c = (rng.uniform(0.1, 9.0) for _ in range(3))
    return (
        f"\nfloat helper{n}_{rng.randrange(10**6)}(vec2 p) {{\n"
        f"    float v = sin(p.x * {a:.3f}) * cos(p.y * {b:.3f});\n"
        f"    v += {c:.3f} * fract(sin(dot(p, vec2(12.9898, 78.233))) * 43758.5453);\n"
        f"    return v * 0.5;\n}}\n"
    )


def synthetic_records(n: int, seed: int = 0, target_bytes: int = 2048) -> Iterator[dict]:
    rng = random.Random(seed)
    bases = example_image_codes()
    recent: list[str] = []
    for i in range(n):
        if recent and rng.random() < 0.05:
            code = _NUMBER.sub(lambda m: f"{float(m.group()) + 0.25:.3f}", rng.choice(recent), count=1)
        else:
            code = _mutate(rng.choice(bases), rng)
            k = 0
            while len(code) < target_bytes:
                code += _helper(rng, k)
                k += 1
            if rng.random() < 0.1:
                code = rng.choice(HEADERS) + code
        recent = (recent + [code])[-50:]
        yield {
            "id": f"bm{seed}x{i:07d}",
            "name": f"{rng.choice(WORDS)} {rng.choice(WORDS)} {i}",
            "author": f"author{rng.randrange(2000)}",
            "description": f"a {rng.choice(WORDS)} shader number {i}",
            "tags": rng.sample(TAGS, 2),
            "date": str(1_400_000_000 + i * 600),
            "image_code": code,
            "image_inputs": [],
            "common_code": "",
            "buffer_a_code": "",
            "buffer_a_inputs": [],
            "license": "CC-BY-NC-SA-3.0",
        }


def write_jsonl(path: Path, n: int, seed: int = 0, target_bytes: int = 2048) -> int:
    """Write ``n`` synthetic records; returns the file size in bytes."""
    with open(path, "w", encoding="utf-8") as f:
        for rec in synthetic_records(n, seed, target_bytes):
            f.write(json.dumps(rec) + "\n")
    return path.stat().st_size
