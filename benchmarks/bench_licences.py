"""Benchmark: licence decisions per second on one core, for ~2 KB synthetic Shadertoy programs.

Input: 5,000 programs built from self-written GLSL pieces, each about 2 KB (the real Shadertoy
median), about 10 % carrying a licence header (varied wordings, URLs, SPDX lines, // and /* */
styles); the rest have ordinary comments only, some with near-miss words ("limit", "sample",
"domain repetition", "distribution") that the prefilter has to let through cheaply.
Runs :func:`corpus.licences.decide` with Shadertoy's site default, best of three rounds.

Usage: ``python benchmarks/bench_licences.py [--programs N] [--seed S]``. Prints plain lines and
a final JSON line; the target is 2,000 programs/s.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

from corpus.licences import SITE_DEFAULTS, decide

TARGET_PER_S = 2000.0
TARGET_BYTES = 2048

HEADERS = [
    "The MIT License\nCopyright (c) {year} {author}\n"
    "Permission is hereby granted, free of charge, to any person\n"
    "obtaining a copy of this shader, subject to the following conditions: keep this notice.",
    "License Creative Commons Attribution-NonCommercial-ShareAlike 3.0 Unported License.",
    "CC BY-NC-SA 4.0 - {author} {year}",
    "https://creativecommons.org/licenses/by/4.0/",
    "SPDX-License-Identifier: MIT OR Apache-2.0",
    "This is free and unencumbered software released into the public domain.",
    "Public domain, do what you like. {author}",
    "Copyright {year} {author}. All rights reserved.",
    "Licensed under the Apache License, Version 2.0",
    "This program is free software: you can redistribute it and/or modify it under the terms of\n"
    "the GNU General Public License as published by the Free Software Foundation, either\n"
    "version 3 of the License, or (at your option) any later version.",
    "Redistribution and use in source and binary forms, with or without modification, are\n"
    "permitted provided that the following conditions are met. Neither the name of {author}\n"
    "may be used to endorse products derived from this shader.",
    "Not for commercial use. {author}, {year}",
    "CC0 1.0 Universal",
    "WTFPL",
    "zlib license",
    "I am the only copyright holder of this shader. You cannot host or distribute it.",
]
AUTHORS = ["Ada Example", "B. Sample", "rings_fan", "Noise Person", "Jo Q."]
PLAIN_COMMENTS = [
    "// raymarch the scene",
    "// soft shadows, see the lighting notes",
    "// limit the number of steps for speed",
    "// sample the noise texture twice",
    "// domain repetition along x",
    "// GGX normal distribution term",
    "// gamma correction",
    "// TODO: antialiasing",
    "/* camera setup: orbit around the origin */",
    "// fbm with 5 octaves",
]
FUNCTIONS = [
    "float sdSphere{n}(vec3 p, float r) {{ return length(p) - r; }}",
    "float sdBox{n}(vec3 p, vec3 b) {{ vec3 q = abs(p) - b;\n"
    "    return length(max(q, 0.0)) + min(max(q.x, max(q.y, q.z)), 0.0); }}",
    "mat2 rot{n}(float a) {{ float c = cos(a), s = sin(a); return mat2(c, -s, s, c); }}",
    "float hash{n}(vec2 p) {{ p = fract(p * vec2(123.34, 456.21));\n"
    "    p += dot(p, p + 45.32); return fract(p.x * p.y); }}",
    "vec3 palette{n}(float t) {{ return 0.5 + 0.5 * cos(6.28318 * (t + vec3(0.0, 0.33, 0.67))); }}",
    "float noise{n}(vec2 p) {{ vec2 i = floor(p), f = fract(p); f = f * f * (3.0 - 2.0 * f);\n"
    "    return mix(mix(hash0(i), hash0(i + vec2(1, 0)), f.x),\n"
    "               mix(hash0(i + vec2(0, 1)), hash0(i + 1.0), f.x), f.y); }}",
]
MAIN = """void mainImage(out vec4 fragColor, in vec2 fragCoord)
{{
    vec2 uv = (2.0 * fragCoord - iResolution.xy) / iResolution.y;
    vec3 ro = vec3(0.0, 0.0, -3.0), rd = normalize(vec3(uv, 1.5));
    float t = 0.0;
    for (int i = 0; i < {steps}; i++) {{
        float d = sdSphere0(ro + rd * t, 1.0);
        if (d < 0.001 || t > 20.0) break;
        t += d;
    }}
    vec3 col = palette0(t * 0.1 + iTime * {speed});
    fragColor = vec4(col, 1.0);
}}
"""


def comment(text: str, rng: random.Random) -> str:
    if rng.random() < 0.5:
        return "\n".join(f"// {line}" for line in text.splitlines())
    return "/*\n" + "\n".join(f" * {line}" for line in text.splitlines()) + "\n */"


def make_program(rng: random.Random, licensed: bool) -> str:
    parts = []
    if licensed:
        header = rng.choice(HEADERS).format(year=rng.randint(2013, 2024), author=rng.choice(AUTHORS))
        parts.append(comment(header, rng))
    parts.append(f"// {rng.choice(['Rings', 'Tunnel', 'Blobs', 'Waves'])} by {rng.choice(AUTHORS)}")
    n = 0
    while sum(len(p) + 1 for p in parts) < TARGET_BYTES - 420:
        parts.append(rng.choice(PLAIN_COMMENTS))
        parts.append(rng.choice(FUNCTIONS).format(n=n))
        n += 1
    parts.append(MAIN.format(steps=rng.choice([64, 96, 128]), speed=round(rng.random(), 2)))
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    programs = [[make_program(rng, licensed=rng.random() < 0.10)] for _ in range(args.programs)]
    sizes = [len(p[0].encode()) for p in programs]
    site_default = SITE_DEFAULTS["shadertoy"]
    decide(programs[0], site_default=site_default)  # warm caches, as a long import run would be

    timings = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        decisions = [decide(codes, site_default=site_default) for codes in programs]
        timings.append(time.perf_counter() - start)
    best = min(timings)
    per_s = len(programs) / best
    from_code = sum(d.chosen.evidence in ("code-comment", "spdx-line") for d in decisions)
    # The slow path alone: programs that carry a header go through every detailed pattern.
    licensed = [
        codes for codes, d in zip(programs, decisions, strict=True) if d.chosen.evidence != "site-default"
    ]
    start = time.perf_counter()
    for codes in licensed:
        decide(codes, site_default=site_default)
    licensed_per_s = len(licensed) / (time.perf_counter() - start)

    print(
        f"programs: {len(programs)}, median size {statistics.median(sizes):.0f} B, "
        f"mean {statistics.mean(sizes):.0f} B"
    )
    print(f"licensed from code: {from_code} ({100.0 * from_code / len(programs):.1f} %)")
    print(f"rounds (s): {', '.join(f'{t:.3f}' for t in timings)}")
    print(f"decide(): {per_s:,.0f} programs/s on one core, best of {args.rounds}")
    print(f"ratio to the {TARGET_PER_S:,.0f}/s target: {per_s / TARGET_PER_S:.1f}x")
    print(f"programs with a licence header only: {licensed_per_s:,.0f} programs/s")
    print(
        json.dumps(
            {
                "benchmark": "licences.decide",
                "programs": len(programs),
                "median_bytes": statistics.median(sizes),
                "licensed_from_code": from_code,
                "programs_per_s": round(per_s, 1),
                "licensed_only_per_s": round(licensed_per_s, 1),
                "target_per_s": TARGET_PER_S,
                "ratio_to_target": round(per_s / TARGET_PER_S, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
