"""Benchmark: a validation worker's resident memory over many validations (issue 4's target: flat
over 10,000 validations of small shaders; DESIGN: "no leak over 10,000 programs").

Runs :func:`render.profiling.validate_one` in this process, exactly as a worker does between its
messages, on one :class:`render.engine.Engine` (one EGL context), for ``--n`` distinct small
self-written Shadertoy programs (each one's constants differ, so every one is compiled and
JIT-compiled anew; ``MESA_SHADER_CACHE_DISABLE=true``), profiled at 32x32 at two times. A tenth of
them fail to compile and a tenth have a Buffer A with feedback, so the error and multipass paths
are exercised too. Prints the resident size (``/proc/self/statm``) at the checkpoints and a final
JSON line.

Usage: ``python benchmarks/bench_worker_rss.py [--n 10000]`` (about 2 minutes per 1,000 on one
llvmpipe core).
"""

from __future__ import annotations

import os

os.environ.setdefault("MESA_SHADER_CACHE_DISABLE", "true")  # before any GL library loads

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from render.engine import Engine  # noqa: E402
from render.profiling import validate_one  # noqa: E402
from render.sandbox import rss_bytes  # noqa: E402

IMAGE = """void mainImage(out vec4 c, in vec2 f) {{
    vec2 uv = f / iResolution.xy;
    float v = sin(uv.x * {a:.3f} + iTime) * cos(uv.y * {b:.3f} - iTime * 0.5);
    c = vec4(0.5 + 0.5 * v, uv.y, {c:.3f} + 0.2 * sin(iTime), 1.0){broken};
}}"""
BUFFER = """void mainImage(out vec4 c, in vec2 f) {{
    vec4 last = texelFetch(iChannel0, ivec2(f), 0);
    c = mix(last, vec4(f / iResolution.xy, {a:.3f}, 1.0), 0.1);
}}"""
READS_BUFFER = {"channel": 0, "kind": "buffer", "ref": "Buffer A"}


def item(i: int) -> dict[str, Any]:
    """The i-th program: distinct constants; every 10th broken, every 10th (offset 5) multipass."""
    values = {"a": 3.0 + (i % 101) * 0.07, "b": 2.0 + (i // 101) * 0.05, "c": (i % 7) / 7.0}
    image = IMAGE.format(**values, broken=")" if i % 10 == 3 else "")
    passes = [{"name": "Image", "type": "image", "code": image, "inputs": []}]
    if i % 10 == 5:
        buffer = {
            "name": "Buffer A",
            "type": "buffer",
            "code": BUFFER.format(**values),
            "inputs": [READS_BUFFER],
        }
        passes = [buffer, {**passes[0], "inputs": [READS_BUFFER]}]
    return {"program": f"bench:{i}", "dialect": "shadertoy", "code_sha256": f"{i:064d}", "passes": passes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    args = parser.parse_args()
    checkpoints = {c for c in (0, 100, 1000, 2500, 5000, 7500) if c < args.n} | {args.n}

    engine = Engine()
    print(f"renderer: {engine.renderer_string}")
    samples: list[dict[str, Any]] = []
    statuses: Counter = Counter()
    started = time.perf_counter()
    for i in range(args.n + 1):
        if i in checkpoints:
            mib = rss_bytes() / 2**20
            samples.append(
                {
                    "validations": i,
                    "rss_mib": round(mib, 1),
                    "seconds": round(time.perf_counter() - started, 1),
                }
            )
            print(f"{i:>6} validations  RSS {mib:7.1f} MiB  {samples[-1]['seconds']:>7.1f} s", flush=True)
        if i == args.n:
            break
        result = validate_one(engine, item(i), sizes=((32, 32),), times=(0.5, 2.0))
        statuses[result["status"]] += 1
    engine.release()
    after_first = [s["rss_mib"] for s in samples if s["validations"] >= min(1000, args.n)]
    print(
        json.dumps(
            {
                "validations": args.n,
                "statuses": dict(statuses),
                "rss": samples,
                "growth_after_first_1000_mib": round(max(after_first) - min(after_first), 1),
                "renderer": engine.renderer_string,
                "load_1min": round(os.getloadavg()[0], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
