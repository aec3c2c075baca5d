"""The engine: compile a plan once, render it many times, read frames without copies.

:class:`Engine` owns one OpenGL context and the stand-in textures; :meth:`Engine.compile` turns a
program (or a plan) into a :class:`CompiledProgram` that renders any (time, resolution) into float
targets and reads the picture into a caller's preallocated uint8 array (:meth:`read_into`),
which is what pretraining's data loaders use: no PIL, no per-frame allocation on the hot path.

Targets are float (RGBA32F) for every pass, as on the site, so buffers keep values above 1 and
validation sees NaNs. The picture is converted to 8 bits as a browser canvas would show it (NaN →
0, clamped) and flipped to top-down rows by one small pass on the GPU.

That second pass costs as much as a simple shader on llvmpipe, so ``compile(...,
float_picture=False)`` (pretraining, frames, sheets, bench) draws the image pass straight into an
8-bit target instead, as the browser does (its float→unorm conversion also turns NaN into 0 and
clamps), and upside down (:mod:`render.dialects.flip`: the program sees the coordinates it sees
upright), so that rows are read top first straight into the caller's array; a pass that cannot
be drawn upside down exactly is read bottom-up and flipped on the CPU. Programs whose picture
feeds back into the next frame keep float targets either way.

On a GPU every program is compiled with its loops bounded (:mod:`render.dialects.loopguard`): a
GPU driver has no watchdog on a headless context, and a shader that never ends would keep the
device busy after its process was killed. ``IMAGEPROGRAMS_LOOP_GUARD`` (or ``Engine(loop_guard=)``)
says ``auto`` (the default: on for a GPU, off for llvmpipe, whose own cap bounds loops), ``on`` or
``off``; the renderer string says when the guard is on, so guarded results are kept apart.

Beside it: :mod:`render.uniforms` (what a program's inputs hold at a frame), :mod:`render.targets`
(the textures a program draws into at one size), :mod:`render.guard` (whether the guard is on).
"""

from __future__ import annotations

import time as _time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from corpus.errors import ExitCode, ImageProgramsError
from render.context import DeviceInfo, create_context, device_info
from render.dialects import Binding, PassPlan, Plan, build_plan
from render.dialects.flip import takes_vertical_derivatives, upside_down
from render.dialects.loopguard import (
    REPORT_BINDING,
    REPORT_BLOCK,
    UnguardableLoop,
    guard_loops,
)
from render.guard import guard_can_report, loop_guard_choice
from render.program import RenderProgram
from render.standins import standin_pixels
from render.targets import Targets
from render.uniforms import adapt, adapter, frame_values, size_values

_GL_SAMPLER_CUBE = 35680
_GL_SAMPLER_3D = 35679

_CONVERT_VERTEX = """\
#version 330 core
void main() {
    vec2 p = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2)) * 2.0 - 1.0;
    gl_Position = vec4(p, 0.0, 1.0);
}
"""
_CONVERT_FRAGMENT = """\
#version 330 core
uniform sampler2D src;
layout(location = 0) out vec4 o;
void main() {
    ivec2 p = ivec2(gl_FragCoord.xy);
    p.y = textureSize(src, 0).y - 1 - p.y;
    vec4 c = texelFetch(src, p, 0);
    o = mix(c, vec4(0.0), isnan(c));
}
"""


class ShaderError(ImageProgramsError):
    """The driver refused the program: ``status`` is ``compile_error`` or ``link_error``."""

    exit_code = ExitCode.SHADER_ERROR

    def __init__(self, message: str, status: str, log: str) -> None:
        super().__init__(message, hint=ExitCode.SHADER_ERROR.hint)
        self.status = status
        self.log = log


class UnsupportedProgram(ImageProgramsError):
    exit_code = ExitCode.UNSUPPORTED


class LoopGuardRefused(ShaderError):
    """The loop guard is on and cannot bound one of the program's loops for sure: the program is
    not run (status ``unsupported``), since on a GPU an unbounded loop may never end."""

    def __init__(self, pass_name: str, why: str) -> None:
        log = f"loop guard: cannot bound {why} in {pass_name}; not run with the guard on"
        super().__init__(f"{pass_name}: {log}", "unsupported", log)
        self.hint = "the loop guard is on for GPUs (IMAGEPROGRAMS_LOOP_GUARD=off turns it off)"


def _driver_log(exc: Exception) -> tuple[str, str]:
    text = str(exc)
    status = "link_error" if "Linker" in text or "link" in text.lower().split("\n", 1)[0] else "compile_error"
    lines = [ln for ln in text.splitlines() if ln.strip() and not set(ln.strip()) <= {"="}]
    lines = [ln for ln in lines if ln.strip() not in ("GLSL Compiler failed", "GLSL Linker failed")]
    lines = [ln for ln in lines if ln.strip() not in ("fragment_shader", "vertex_shader")]
    return status, "\n".join(lines)[:4000]


@dataclass
class _CompiledPass:
    plan: PassPlan
    program: Any
    vao: Any
    uniforms: list[tuple[Any, str, Callable[[Any], Any]]]  # (uniform, semantic, adapter to its type)
    samplers: list[tuple[int, Binding, Any]]  # (unit, binding, sampler object)
    channel_units: dict[int, int]  # Shadertoy channel → unit (for iChannelResolution)
    #: the value last written to each uniform (GL keeps it in the program): unchanged ones are skipped
    written: list[Any] = field(default_factory=list)


class Engine:
    """One OpenGL context and everything shared between programs (stand-ins, the 8-bit pass)."""

    def __init__(self, ctx=None, *, device: str | None = None, loop_guard: str | None = None) -> None:
        choice = loop_guard_choice(loop_guard)
        self._owns_ctx = ctx is None  # a caller's context stays the caller's to release
        self.ctx = ctx if ctx is not None else create_context(device)
        self.device: DeviceInfo = device_info(self.ctx)
        #: whether programs are compiled with their loops bounded (render.dialects.loopguard)
        self.loop_guard = choice == "on" or (choice == "auto" and not self.device.software)
        #: whether a tripped guard can be seen (a storage buffer; GLSL 3.30 alone has none)
        self.loop_guard_reports = self.loop_guard and guard_can_report(self.ctx)
        self._loop_flag = None
        if self.loop_guard_reports:
            self._loop_flag = self.ctx.buffer(reserve=4)
            self._loop_flag.bind_to_storage_buffer(REPORT_BINDING)
        self._standins: dict[tuple[str, str | None], Any] = {}
        self._convert = self.ctx.program(vertex_shader=_CONVERT_VERTEX, fragment_shader=_CONVERT_FRAGMENT)
        self._convert["src"].value = 0
        self._convert_vao = self.ctx.vertex_array(self._convert, [])

    @property
    def renderer_string(self) -> str:
        """The driver's vendor | renderer | version, and ``| loop guard`` when the guard is on
        (results with and without it are kept apart)."""
        if not self.loop_guard:
            return self.device.renderer_string
        suffix = " | loop guard" if self.loop_guard_reports else " | loop guard, unreported"
        return self.device.renderer_string + suffix

    def reset_loop_guard(self) -> None:
        """Clear the flag a tripped loop guard sets (every program shares the engine's flag)."""
        if self._loop_flag is not None:
            self._loop_flag.write(b"\0\0\0\0")

    def loop_guard_tripped(self) -> bool | None:
        """Whether a loop guard tripped since :meth:`reset_loop_guard`; None when the guard is off
        or cannot report. Waits for the frames drawn so far."""
        if self._loop_flag is None:
            return None
        return self._loop_flag.read() != b"\0\0\0\0"

    def compile(self, program: RenderProgram | Plan, *, float_picture: bool = True) -> CompiledProgram:
        """Compile every pass; raises :class:`ShaderError` or :class:`UnsupportedProgram`.

        ``float_picture=False`` is the fast path for 8-bit pictures (:meth:`CompiledProgram.read_into`
        only): about twice the images/s on llvmpipe for small simple shaders, but
        :meth:`CompiledProgram.read_float` is then unavailable (validation needs it for NaNs)."""
        plan = program if isinstance(program, Plan) else build_plan(program)
        if plan.unsupported:
            raise UnsupportedProgram(plan.unsupported)
        if self.loop_guard:
            plan = self._guarded(plan)
        return CompiledProgram(self, plan, float_picture=float_picture)

    def _guarded(self, plan: Plan) -> Plan:
        """``plan`` with every pass's loops bounded (a copy; the caller's plan is left as it is)."""
        passes = []
        for p in plan.passes:
            try:
                passes.append(replace(p, fragment=guard_loops(p.fragment, report=self.loop_guard_reports)))
            except UnguardableLoop as exc:
                raise LoopGuardRefused(p.name, str(exc)) from None
        return replace(plan, passes=passes)

    def standin(self, kind: str, ref: str | None):
        key = (kind, ref if kind in ("noise", "cubemap", "volume") else None)
        tex = self._standins.get(key)
        if tex is None:
            pixels = standin_pixels(kind, ref)
            if kind == "cubemap":
                tex = self.ctx.texture_cube(pixels.shape[2:0:-1], 4, pixels.tobytes())
            elif kind == "volume":
                d, h, w = pixels.shape[:3]
                tex = self.ctx.texture3d((w, h, d), 4, pixels.tobytes())
            else:
                tex = self.ctx.texture(pixels.shape[1::-1], 4, pixels.tobytes())
            tex.build_mipmaps()
            self._standins[key] = tex
        return tex

    def release(self) -> None:
        for tex in self._standins.values():
            tex.release()
        self._standins.clear()
        self._convert_vao.release()
        self._convert.release()
        if self._loop_flag is not None:
            self._loop_flag.release()
        if self._owns_ctx:
            self.ctx.release()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


_FILTERS = {"nearest": "NEAREST", "linear": "LINEAR", "mipmap": "LINEAR_MIPMAP_LINEAR"}
_UNSET = object()


class CompiledProgram:
    """A program compiled on an :class:`Engine`: render frames, read them back, release."""

    MAX_SIZES = 4  # resolutions kept allocated at once (pretraining mixes a few)

    def __init__(self, engine: Engine, plan: Plan, *, float_picture: bool = True) -> None:
        self.engine = engine
        self.ctx = engine.ctx
        self.plan = plan
        self.float_picture = float_picture
        self.passes: list[_CompiledPass] = []
        self._targets: OrderedDict[tuple[int, int], Targets] = OrderedDict()
        self._last_size: tuple[int, int] | None = None
        self._last_targets: Targets | None = None
        self.frame = 0
        self.time_delta = 1.0 / 60.0
        passes = list(plan.passes)
        #: whether the picture is drawn upside down into 8 bits, to be read with no CPU flip
        self.upside_down = False
        #: the image pass as written, for odd heights where upside down would change its dFdy
        self._upright: PassPlan | _CompiledPass | None = None
        if not float_picture and plan.feedback_targets() == 0:
            flipped = upside_down(passes[-1])
            if flipped is not None:
                if takes_vertical_derivatives(passes[-1]):
                    self._upright = passes[-1]
                passes[-1], self.upside_down = flipped, True
        engine.reset_loop_guard()
        started = _time.perf_counter()
        try:
            for p in passes:
                self.passes.append(self._compile_pass(p))
        except ShaderError:
            self.release()
            raise
        self.compile_ms = (_time.perf_counter() - started) * 1000.0

    def passes_at(self, height: int) -> tuple[list[_CompiledPass], bool]:
        """The passes that draw a picture ``height`` rows high, and whether upside down: at odd
        heights a pass taking vertical derivatives is drawn as written (compiled on first use),
        because upside down its 2×2 quads would pair other rows."""
        if not self.upside_down or height % 2 == 0 or self._upright is None:
            return self.passes, self.upside_down
        if isinstance(self._upright, PassPlan):
            self._upright = self._compile_pass(self._upright)
        return [*self.passes[:-1], self._upright], False

    def _compile_pass(self, p: PassPlan) -> _CompiledPass:
        import moderngl

        try:
            program = self.ctx.program(vertex_shader=p.vertex, fragment_shader=p.fragment)
        except Exception as exc:  # noqa: BLE001 - moderngl raises a bare Exception with the log
            status, log = _driver_log(exc)
            raise ShaderError(f"{p.name}: {status.replace('_', ' ')}: {log[:300]}", status, log) from None
        members = {name: program[name] for name in program}
        if REPORT_BLOCK in members:  # the loop guard's trip flag
            members.pop(REPORT_BLOCK).binding = REPORT_BINDING
        uniforms: list[tuple[Any, str, Callable[[Any], Any]]] = []
        samplers: list[tuple[int, Binding, Any]] = []
        channel_units: dict[int, int] = {}
        by_name = {b.uniform: b for b in p.bindings}
        unit = 0
        for name, member in members.items():
            if not isinstance(member, moderngl.Uniform):
                continue
            if member.gl_type in (35678, _GL_SAMPLER_CUBE, _GL_SAMPLER_3D):
                binding = by_name.get(name, Binding(name, "black"))
                member.value = unit
                samplers.append((unit, binding, self._sampler(binding, member.gl_type)))
                if binding.channel is not None:
                    channel_units[binding.channel] = unit
                unit += 1
            elif name in p.uniforms:
                uniforms.append((member, p.uniforms[name], adapter(member)))
            elif name == "_ip_surface":
                uniforms.append((member, "surfacesize", adapter(member)))
            elif name in p.constants:
                member.value = adapt(p.constants[name], member)
        vao = self.ctx.vertex_array(program, [])
        return _CompiledPass(p, program, vao, uniforms, samplers, channel_units, [_UNSET] * len(uniforms))

    def _sampler(self, binding: Binding, gl_type: int):
        import moderngl

        sampler = self.ctx.sampler()
        settings = binding.sampler or {}
        filt = _FILTERS.get(str(settings.get("filter", "linear")).lower(), "LINEAR")
        mag = "NEAREST" if filt == "NEAREST" else "LINEAR"
        sampler.filter = (getattr(moderngl, filt), getattr(moderngl, mag))
        repeat = str(settings.get("wrap", "clamp" if binding.kind in ("buffer", "feedback") else "repeat"))
        sampler.repeat_x = sampler.repeat_y = sampler.repeat_z = repeat.lower() == "repeat"
        if binding.kind not in ("buffer", "feedback"):
            standin = binding.kind
            if gl_type == _GL_SAMPLER_CUBE:
                standin = "cubemap"
            elif gl_type == _GL_SAMPLER_3D:
                standin = "volume"
            sampler.texture = self.engine.standin(standin, binding.ref)
        return sampler

    def _targets_for(self, size: tuple[int, int]) -> Targets:
        if size == self._last_size:  # the common case: frame after frame at one size
            return self._last_targets
        targets = self._targets.get(size)
        if targets is None:
            while len(self._targets) >= self.MAX_SIZES:
                _, old = self._targets.popitem(last=False)
                old.release()
            targets = self._targets[size] = Targets(self.ctx, self, size)
        else:
            self._targets.move_to_end(size)
        self._last_size, self._last_targets = size, targets
        return targets

    def reset(self) -> None:
        """Forget feedback (buffers and backbuffers) and start again at frame 0."""
        for targets in self._targets.values():
            targets.release()
        self._targets.clear()
        self._last_size = self._last_targets = None
        self.frame = 0

    def uniform_values(self, t: float, size: tuple[int, int], frame: int) -> dict[str, Any]:
        """Every semantic's value (see :data:`render.dialects.plan.SEMANTICS`) for one frame."""
        values = size_values(size)
        frame_values(values, float(t), frame, self.time_delta)
        return values

    def render(self, t: float, size: tuple[int, int], frame: int | None = None) -> None:
        """Render one frame of every pass at time ``t`` (seconds) and ``size`` (w, h).

        Feedback (buffers, backbuffers) carries over from the previous call at the same size;
        ``frame`` defaults to the number of frames rendered so far.
        """
        size = (int(size[0]), int(size[1]))
        targets = self._targets_for(size)
        frame = self.frame if frame is None else frame
        values = targets.values
        frame_values(values, float(t), frame, self.time_delta)
        ctx = self.ctx
        for cp in targets.passes:
            p = cp.plan
            chan_res = [(0.0, 0.0, 0.0)] * 4
            for unit, binding, sampler in cp.samplers:
                if binding.kind == "buffer":
                    tex = targets.buffers[binding.ref][0]
                    sampler.texture = tex
                    if sampler.filter[0] not in (0x2600, 0x2601):  # mipmapped read of a buffer
                        tex.build_mipmaps()
                elif binding.kind == "feedback":
                    previous = targets.image[targets.image_latest]  # last frame's picture
                    sampler.texture = previous[min(int(binding.ref or 0), len(previous) - 1)]
                sampler.use(unit)
                if binding.channel is not None and sampler.texture is not None:
                    tw, th = sampler.texture.size[:2]
                    chan_res[binding.channel] = (float(tw), float(th), 1.0)
            values["channelresolution"] = chan_res
            written = cp.written
            for i, (member, semantic, fit) in enumerate(cp.uniforms):
                value = values[semantic]
                if value != written[i]:
                    member.value = fit(value)
                    written[i] = value
            if p.is_image:  # into the spare set: the latest is feedback
                fbo = targets.image_fbo(ctx, 1 - targets.image_latest)
            else:
                fbo = targets.fbo_for(ctx, [targets.buffers[p.name][1]])
            fbo.use()
            cp.vao.render(vertices=3)
            if p.is_image:
                targets.image_latest = 1 - targets.image_latest
            else:
                pair = targets.buffers[p.name]
                pair[0], pair[1] = pair[1], pair[0]
        self.frame = frame + 1

    def loop_guard_tripped(self) -> bool | None:
        """Whether the loop guard cut this program's loops short in a frame drawn since it was
        compiled (the flag is the engine's: compiling another program clears it); None when the
        guard is off or this driver cannot report it."""
        return self.engine.loop_guard_tripped()

    def image_texture(self, size: tuple[int, int], target: int = 0):
        targets = self._targets_for((int(size[0]), int(size[1])))
        return targets.image[targets.image_latest][target]

    def read_float(self, size: tuple[int, int], target: int = 0) -> np.ndarray:
        """The last rendered picture as float32 (h, w, 4), top row first, NaNs kept."""
        if not self.float_picture and self.plan.feedback_targets() == 0:
            raise ImageProgramsError(
                "this program was compiled for 8-bit pictures only",
                hint="compile it with float_picture=True to read float pictures",
            )
        tex = self.image_texture(size, target)
        data = np.frombuffer(tex.read(), np.float32).reshape(size[1], size[0], 4)
        return data[::-1]

    def read_into(self, out: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
        """Write the last rendered picture into ``out`` (uint8, (h, w, 4) or (h, w, 3), top row
        first, as a browser canvas shows it) without allocating. Returns ``out``."""
        h, w, components = out.shape
        size = (w, h) if size is None else size
        targets = self._targets_for((int(size[0]), int(size[1])))
        if targets.direct:
            fbo, bottom_up = targets.image_fbo(self.ctx, 0), not targets.upside_down
        else:
            self.ctx.clear_samplers(0, 1)  # a pass's mipmap sampler would make the float image incomplete
            targets.image[targets.image_latest][0].use(0)
            targets.u8_fbo.use()
            self.engine._convert_vao.render(vertices=3)  # converts and flips rows
            fbo, bottom_up = targets.u8_fbo, False
        if not bottom_up and out.flags.c_contiguous:  # rows already top first: straight in
            fbo.read_into(out, components=components)
            return out
        staging = targets.staging.get(components)
        if staging is None:
            staging = targets.staging[components] = np.empty((h, w, components), np.uint8)
        fbo.read_into(staging, components=components)
        np.copyto(out, staging[::-1] if bottom_up else staging)
        return out

    def release(self) -> None:
        for targets in self._targets.values():
            targets.release()
        self._targets.clear()
        self._last_size = self._last_targets = None
        if isinstance(self._upright, _CompiledPass):
            self.passes.append(self._upright)
        self._upright = None
        for cp in self.passes:
            for _, _, sampler in cp.samplers:
                sampler.release()
            cp.vao.release()
            cp.program.release()
        self.passes = []

    def __enter__(self) -> CompiledProgram:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
