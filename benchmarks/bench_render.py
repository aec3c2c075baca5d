"""Benchmark: images/s of the batch rendering API against a bare moderngl loop (issue 4's target:
ours within 15 % of bare at 64², 128² and 256²), and the share of our time spent outside GL.

Input: the bundled examples (``examples/``) that are written to render ``ok`` and plan to a
single pass (the bare loop draws one program; multipass programs are left out of both sides and
counted). Per program and size, both sides first draw two untimed frames (llvmpipe compiles to
machine code at the first draw), then alternate timed blocks of ``--frames`` frames, ``--repeats``
times; the best block of each side counts (the machine is shared: the best block is the least
disturbed one), and images/s are summed over programs (heavy shaders weigh more):

- ours: ``engine.compile(program, float_picture=False)``, then ``render(t, size)`` + ``read_into``
  a preallocated (h, w, 4) uint8 array, which is what pretraining does;
- bare (:class:`Bare`): the same final fragment and vertex source from the plan compiled with
  ``ctx.program``, drawn into an RGBA8 framebuffer, ``time`` and ``frame`` set per frame (the other
  uniforms once), stand-in textures bound once, ``fbo.read_into`` the same kind of buffer. Programs
  with a backbuffer need float targets in turn and an 8-bit pass to show the same pictures, in
  both loops; they are reported as their own group.

"Outside GL" is measured in a separate run of ours under cProfile: the share of wall time not spent
inside moderngl's C methods (``mgl.*``). cProfile slows Python down more than C, so the share is an
upper bound. ``MESA_SHADER_CACHE_DISABLE=true`` is set, so compile and first-frame times are cold.

Usage: ``python benchmarks/bench_render.py [--sizes 64,128,256] [--frames 30] [--repeats 3]``.
Prints plain lines and a final JSON line.
"""

from __future__ import annotations

import os

os.environ.setdefault("MESA_SHADER_CACHE_DISABLE", "true")  # before any GL library loads

import argparse  # noqa: E402
import cProfile  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import pstats  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harvest.importers import read_records  # noqa: E402
from render.dialects import build_plan  # noqa: E402
from render.engine import _CONVERT_FRAGMENT, _CONVERT_VERTEX, CompiledProgram, Engine  # noqa: E402
from render.program import RenderPassSource, RenderProgram  # noqa: E402
from render.uniforms import adapt  # noqa: E402

EXAMPLES = ROOT / "examples"
EXAMPLE_PATHS = ("shaders21k", "shadertoys.jsonl", "glslsandbox.jsonl", "gl-transitions.json", "repo")
TARGET_RATIO = 0.85  # ours / bare
PER_FRAME = ("time", "frame")  # what a bare loop sets every frame; the rest is set once per size


def example_programs() -> list[RenderProgram]:
    """The bundled programs written to render ``ok``, as render programs."""
    expected = json.loads((EXAMPLES / "expected.json").read_text())
    programs = []
    for name in EXAMPLE_PATHS:
        for record in read_records(EXAMPLES / name):
            key = f"{record.source}:{record.external_id}"
            if expected.get(key, {}).get("expect") != "ok":
                continue
            passes = tuple(
                RenderPassSource(p.name, p.type, p.code, tuple(i.to_json() for i in p.inputs))
                for p in record.passes
            )
            programs.append(RenderProgram(key, record.dialect, passes, record.code_sha256))
    return programs


class Bare:
    """The smallest moderngl loop that draws the same pictures as ours for a one-pass program.

    Without feedback: the plan's final shader straight into RGBA8, read back. With feedback
    (twigl/GLSL Sandbox backbuffers), the same pictures need what ours does: float targets used
    in turn, the last frame bound as the backbuffer, and an 8-bit conversion pass (the engine's
    shader source) before the read."""

    def __init__(self, engine: Engine, compiled: CompiledProgram) -> None:
        ctx = engine.ctx
        self.ctx = ctx
        image = compiled.plan.image
        self.outputs = image.outputs
        self.program = ctx.program(vertex_shader=image.vertex, fragment_shader=image.fragment)
        self.vao = ctx.vertex_array(self.program, [])
        self.semantics = {n: s for n, s in image.uniforms.items() if n in self.program}
        if "_ip_surface" in self.program:
            self.semantics["_ip_surface"] = "surfacesize"
        for name, value in image.constants.items():
            if name in self.program:
                self.program[name].value = adapt(value, self.program[name])
        feedback = {b.uniform: int(b.ref or 0) for b in image.bindings if b.kind == "feedback"}
        self.textures: list[tuple[int, Any]] = []  # (unit, stand-in texture)
        self.feedback: list[tuple[int, int]] = []  # (unit, target of the last frame)
        unit = 0
        for name in self.program:
            member = self.program[name]
            if getattr(member, "gl_type", None) in (35678, 35680, 35679):
                member.value = unit
                if name in feedback:
                    self.feedback.append((unit, min(feedback[name], self.outputs - 1)))
                else:
                    kind = {35680: "cubemap", 35679: "volume"}.get(member.gl_type, "noise")
                    self.textures.append((unit, engine.standin(kind, None)))
                unit += 1
        self.convert = self.convert_vao = None
        if compiled.plan.feedback_targets():
            self.convert = ctx.program(vertex_shader=_CONVERT_VERTEX, fragment_shader=_CONVERT_FRAGMENT)
            self.convert["src"].value = 0
            self.convert_vao = ctx.vertex_array(self.convert, [])
        self.fbos: dict[tuple[int, int], Any] = {}  # size → the 8-bit framebuffer read back
        self.sets: dict[tuple[int, int], list[tuple[list[Any], Any]]] = {}  # size → 2 float sets
        self.latest = 0
        self.values = compiled.uniform_values  # the same uniform values ours computes

    def prepare(self, size: tuple[int, int]) -> None:
        ctx = self.ctx
        if size not in self.fbos:
            self.fbos[size] = ctx.framebuffer([ctx.texture(size, 4)])
            if self.convert is not None:
                sets = [[ctx.texture(size, 4, dtype="f4") for _ in range(self.outputs)] for _ in range(2)]
                self.sets[size] = [(textures, ctx.framebuffer(textures)) for textures in sets]
        values = self.values(0.0, size, 0)
        for name, semantic in self.semantics.items():
            self.program[name].value = adapt(values[semantic], self.program[name])
        ctx.clear_samplers(0, 16)  # ours binds sampler objects; bare uses the textures' own settings
        for unit, texture in self.textures:
            texture.use(unit)
        self.fbos[size].use()
        named = {s: self.program[n] for n, s in self.semantics.items()}
        self.time = named.get("time")
        self.frame = named.get("frame")
        self.frame_int = self.frame is not None and self.frame.fmt[-1] in "iI"

    def draw(self, t: float, frame: int, out: np.ndarray, size: tuple[int, int]) -> None:
        if self.time is not None:
            self.time.value = t
        if self.frame is not None:
            self.frame.value = frame if self.frame_int else float(frame)
        if self.convert is None:
            self.vao.render(vertices=3)
            self.fbos[size].read_into(out, components=4)
            return
        sets = self.sets[size]
        previous, (current, fbo) = sets[self.latest][0], sets[1 - self.latest]
        for unit, texture in self.textures:  # the conversion pass took unit 0
            texture.use(unit)
        for unit, target in self.feedback:
            previous[target].use(unit)
        fbo.use()
        self.vao.render(vertices=3)
        self.latest = 1 - self.latest
        current[0].use(0)
        self.fbos[size].use()
        self.convert_vao.render(vertices=3)
        self.fbos[size].read_into(out, components=4)

    def release(self) -> None:
        for fbo in self.fbos.values():
            for tex in fbo.color_attachments:
                tex.release()
            fbo.release()
        for sets in self.sets.values():
            for textures, fbo in sets:
                fbo.release()
                for tex in textures:
                    tex.release()
        for obj in (self.convert_vao, self.convert, self.vao, self.program):
            if obj is not None:
                obj.release()


def ours_block(compiled: CompiledProgram, size, out, frames: int, t0: float) -> float:
    started = time.perf_counter()
    for i in range(frames):
        compiled.render(t0 + i / 60.0, size)
        compiled.read_into(out)
    return time.perf_counter() - started


def bare_block(bare: Bare, size, out, frames: int, t0: float) -> float:
    bare.prepare(size)
    started = time.perf_counter()
    for i in range(frames):
        bare.draw(t0 + i / 60.0, i, out, size)
    return time.perf_counter() - started


def outside_gl_share(engine: Engine, programs: list[RenderProgram], size, frames: int) -> float:
    """Share of wall time outside moderngl's C methods, from a cProfile run of ours."""
    compiled = [engine.compile(p, float_picture=False) for p in programs]
    out = np.empty((size[1], size[0], 4), np.uint8)
    for c in compiled:
        c.render(0.0, size)
        c.read_into(out)
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for c in compiled:
        for i in range(frames):
            c.render(1.0 + i / 60.0, size)
            c.read_into(out)
    profiler.disable()
    wall = time.perf_counter() - started
    for c in compiled:
        c.release()
    stats = pstats.Stats(profiler).stats  # (file, line, name) → (cc, nc, tottime, cumtime, callers)
    gl = sum(row[2] for (_, _, name), row in stats.items() if "of 'mgl." in name)
    return max(0.0, 1.0 - gl / wall)


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_1min": round(load[0], 2),
        "mesa_shader_cache": os.environ.get("MESA_SHADER_CACHE_DISABLE") != "true",
    }


def rates(seconds: dict[str, float], images: int) -> dict[str, Any]:
    ours, bare = images / seconds["ours"], images / seconds["bare"]
    return {
        "ours_images_per_second": round(ours, 1),
        "bare_images_per_second": round(bare, 1),
        "ratio": round(ours / bare, 3),
        "within_target": ours / bare >= TARGET_RATIO,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="64,128,256")
    parser.add_argument("--frames", type=int, default=30, help="frames per timed block")
    parser.add_argument("--repeats", type=int, default=5, help="timed blocks per side, program and size")
    parser.add_argument("--profile-frames", type=int, default=10)
    args = parser.parse_args()
    sizes = [(int(s), int(s)) for s in args.sizes.split(",")]

    engine = Engine()
    print(f"renderer: {engine.renderer_string}")
    programs, multipass = [], []
    for program in example_programs():
        (programs if len(build_plan(program).passes) == 1 else multipass).append(program)
    groups = {p.key: "feedback" if build_plan(p).feedback_targets() else "direct" for p in programs}
    counts = {g: sum(1 for v in groups.values() if v == g) for g in ("direct", "feedback")}
    print(
        f"programs: {len(programs)} single-pass ok examples, {counts['direct']} without feedback and "
        f"{counts['feedback']} with a backbuffer ({len(multipass)} multipass left out)"
    )

    # best block per program, size and side, summed per group
    seconds = {(g, s): {"ours": 0.0, "bare": 0.0} for g in (*counts, "all") for s in sizes}
    per_program: dict[str, dict[str, float]] = {}
    compile_ms, first_frame_ms = [], []
    buffers = {s: np.empty((s[1], s[0], 4), np.uint8) for s in sizes}
    for program in programs:
        compiled = engine.compile(program, float_picture=False)
        compile_ms.append(compiled.compile_ms)
        started = time.perf_counter()
        compiled.render(0.0, sizes[0])
        compiled.read_into(buffers[sizes[0]])
        first_frame_ms.append((time.perf_counter() - started) * 1000)
        bare = Bare(engine, compiled)
        for s in sizes:
            out = buffers[s]
            for _ in range(2):  # untimed: JIT for this size and target format, allocations
                ours_block(compiled, s, out, 1, 0.0)
                bare_block(bare, s, out, 1, 0.0)
            ours, bare_times = [], []
            for r in range(args.repeats):  # alternate which side goes first
                if r % 2 == 0:
                    ours.append(ours_block(compiled, s, out, args.frames, 1.0))
                bare_times.append(bare_block(bare, s, out, args.frames, 1.0))
                if r % 2 == 1:
                    ours.append(ours_block(compiled, s, out, args.frames, 1.0))
            for g in (groups[program.key], "all"):
                seconds[(g, s)]["ours"] += min(ours)
                seconds[(g, s)]["bare"] += min(bare_times)
            per_program.setdefault(program.key, {})[f"{s[0]}x{s[1]}"] = round(min(bare_times) / min(ours), 3)
        bare.release()
        compiled.release()

    figures: dict[str, Any] = {"sizes": {}}
    print(f"{'size':>8} {'group':>9} {'ours img/s':>11} {'bare img/s':>11} {'ours/bare':>10}")
    for s in sizes:
        name = f"{s[0]}x{s[1]}"
        entry: dict[str, Any] = {}
        for g, n in (*counts.items(), ("all", len(programs))):
            entry[g] = rates(seconds[(g, s)], n * args.frames)
            print(
                f"{name:>8} {g:>9} {entry[g]['ours_images_per_second']:>11.1f} "
                f"{entry[g]['bare_images_per_second']:>11.1f} {entry[g]['ratio']:>10.3f}"
            )
        ratios = [v[name] for v in per_program.values()]
        entry["median_program_ratio"] = statistics.median(ratios)
        entry["worst_program_ratio"] = min(ratios)
        entry["worst_program"] = min(per_program, key=lambda k: per_program[k][name])
        entry["outside_gl_share_cprofile"] = round(
            outside_gl_share(engine, programs, s, args.profile_frames), 3
        )
        print(
            f"{name:>8} per program ours/bare: median {entry['median_program_ratio']:.3f}, worst "
            f"{entry['worst_program_ratio']:.3f} ({entry['worst_program']}); time outside GL (cProfile): "
            f"{entry['outside_gl_share_cprofile']:.1%}"
        )
        figures["sizes"][name] = entry
    figures |= {
        "renderer": engine.renderer_string,
        "programs": len(programs),
        "without_feedback": counts["direct"],
        "with_feedback": counts["feedback"],
        "multipass_left_out": len(multipass),
        "frames_per_block": args.frames,
        "repeats": args.repeats,
        "compile_ms_median": round(statistics.median(compile_ms), 2),
        "first_frame_ms_median": round(statistics.median(first_frame_ms), 2),
        "first_frame_ms_max": round(max(first_frame_ms), 2),
        "target_ratio": TARGET_RATIO,
        "machine": machine(),
    }
    print(
        f"compile (ctx.program): median {figures['compile_ms_median']} ms; first frame (JIT): median "
        f"{figures['first_frame_ms_median']} ms, max {figures['first_frame_ms_max']} ms"
    )
    engine.release()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
