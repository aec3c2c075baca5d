"""Headless OpenGL contexts: EGL, a GPU when one is present, Mesa's llvmpipe otherwise.

One context per process, reused for many programs (creating one costs tens of milliseconds and
leaks driver state on some stacks). ``IMAGEPROGRAMS_GL_DEVICE`` picks: ``auto`` (the default: the
first EGL device that is not a software rasteriser, else the software one), ``cpu`` or ``gpu``, or
an EGL device index. With several GPUs, ``auto`` and ``gpu`` give each process of a ``torchrun``
job the GPU of its local rank (``LOCAL_RANK``, modulo the GPUs EGL lists), so the ranks of one
machine render on different GPUs without a per-rank setting. The renderer string (vendor |
renderer | version) is recorded with every result, since a program's status and speed belong to
the driver that produced them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from corpus.errors import ExitCode, ImageProgramsError

_SOFTWARE = ("llvmpipe", "softpipe", "swrast", "software", "lavapipe")


class NoContextError(ImageProgramsError):
    """No OpenGL 3.3 context could be created headless."""

    exit_code = ExitCode.NO_CONTEXT


@dataclass(frozen=True)
class DeviceInfo:
    vendor: str
    renderer: str
    version: str
    device_index: int | None
    software: bool

    @property
    def renderer_string(self) -> str:
        return f"{self.vendor} | {self.renderer} | {self.version}"

    def to_json(self) -> dict[str, Any]:
        return {
            "vendor": self.vendor,
            "renderer": self.renderer,
            "version": self.version,
            "device_index": self.device_index,
            "software": self.software,
            "renderer_string": self.renderer_string,
        }


def _import_moderngl():
    try:
        import moderngl
    except ImportError as exc:  # the [render] extra is missing
        raise NoContextError(
            "moderngl is not installed",
            hint="install the renderer: pip install 'imageprograms[render]' (scripts/setup.sh does it)",
        ) from exc
    return moderngl


def _try(index: int | None):
    moderngl = _import_moderngl()
    kwargs: dict[str, Any] = {"standalone": True, "backend": "egl", "require": 330}
    if index is not None:
        kwargs["device_index"] = index
    return moderngl.create_context(**kwargs)


def _is_software(ctx) -> bool:
    return any(word in ctx.info["GL_RENDERER"].lower() for word in _SOFTWARE)


def local_rank() -> int:
    """This process's rank on its machine in a ``torchrun`` job (0 outside one): which GPU
    ``auto`` picks where there are several. DataLoader workers inherit it from their rank."""
    try:
        return max(0, int(os.environ.get("LOCAL_RANK", "0")))
    except ValueError:
        return 0


def create_context(device: str | None = None):
    """A standalone EGL context (moderngl), chosen as the module docstring says."""
    choice = (device or os.environ.get("IMAGEPROGRAMS_GL_DEVICE") or "auto").lower()
    errors: list[str] = []
    if choice.isdigit():
        try:
            return _try(int(choice))
        except Exception as exc:  # noqa: BLE001 - EGL reports every failure as a bare Exception
            errors.append(f"device {choice}: {exc}")
    else:
        candidates: list = []
        gpus: list = []
        wanted = local_rank()
        for index in range(16):
            try:
                ctx = _try(index)
            except Exception as exc:  # noqa: BLE001
                if index == 0:
                    errors.append(str(exc))
                break
            if not _is_software(ctx) and choice in ("auto", "gpu"):
                gpus.append(ctx)
                if len(gpus) > wanted:  # this rank's GPU: no need to open the others
                    break
                continue
            candidates.append(ctx)
        if gpus:
            chosen = gpus[wanted % len(gpus)]
            for other in candidates + gpus:
                if other is not chosen:
                    other.release()
            return chosen
        if choice != "gpu":
            software = [c for c in candidates if _is_software(c)]
            if software:
                for other in candidates[1:]:
                    other.release()
                return candidates[0]
        renderers = sorted({str(c.info["GL_RENDERER"]) for c in candidates})
        for ctx in candidates:
            ctx.release()
        if choice == "gpu" and renderers:  # EGL works: there is just no GPU behind it
            raise NoContextError(
                f"no GPU to render on: this machine's EGL devices are software ({', '.join(renderers)})",
                hint="leave out --device (or give --device cpu) to render on the CPU; on a machine "
                "with a GPU, install its EGL driver and check with `render info --device gpu`",
            )
        if choice == "gpu":
            errors.append("no GPU EGL device found")
        if not errors:
            try:
                return _try(None)
            except Exception as exc:  # noqa: BLE001
                errors.append(str(exc))
    raise NoContextError(
        "could not create a headless OpenGL 3.3 context: " + "; ".join(errors)[:500],
        hint="install Mesa's EGL and DRI drivers (apt-get install libegl1 libgl1-mesa-dri) "
        "or set IMAGEPROGRAMS_GL_DEVICE=cpu",
    )


#: llvmpipe rasterises in tiles of this many pixels a side, one tile per thread at a time.
LLVMPIPE_TILE = 64


def share_cores(processes: int, frame: tuple[int, int] | None = None) -> int | None:
    """Set how many rasterizer threads llvmpipe starts in this process when ``processes``
    processes render at once (DataLoader workers, times DDP ranks on one machine) at ``frame``
    (w, h) pixels; returns the count set, or None where nothing was changed.

    Why: llvmpipe starts one rasterizer thread per core in every process, so N rendering
    processes run N × cores threads on the cores, and a thread only ever works on one 64×64 tile,
    so a 64² frame keeps one of them busy while the hand-offs between them cost more than the
    frame (the loader benchmark: a 64² frame with no rasterizer thread renders 1.6× as fast).
    The count is min(cores // processes, tiles of a frame); one becomes 0, llvmpipe's mode that
    rasterises in the calling thread. It goes into ``LP_NUM_THREADS``, which llvmpipe reads when
    a process opens its first context: call this before that, in a process of its own (it
    changes the environment). A value the user set is kept; a GPU ignores the variable.
    """
    if "LP_NUM_THREADS" in os.environ or (processes <= 1 and frame is None):
        return None
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    threads = cores // max(1, processes)
    if frame is not None:
        tiles = -(-int(frame[0]) // LLVMPIPE_TILE) * -(-int(frame[1]) // LLVMPIPE_TILE)
        threads = min(threads, tiles)
    threads = 0 if threads <= 1 else threads
    os.environ["LP_NUM_THREADS"] = str(threads)
    return threads


#: The environment that makes llvmpipe's JIT skip LLVM's optimisation passes (see
#: :func:`prefer_quick_jit`): validation workers get it, and loader workers of a stream over many
#: programs set it for themselves.
QUICK_JIT_ENV = {"GALLIVM_PERF": "nopt"}


def prefer_quick_jit() -> bool:
    """Have llvmpipe compile this process's shaders without LLVM's optimisation passes
    (``GALLIVM_PERF=nopt``), unless the environment already says how; returns whether it set it.

    Why: on llvmpipe a program's first draw compiles it to machine code, and without the passes
    that takes about half as long while its frames take 1.1-1.25x as long (benchmarks/RESULTS.md,
    issue 11). Worth it where programs are compiled more often than they are drawn: validation
    (each program once, a few frames) and a training stream over more programs than a loader
    worker keeps compiled. Call it before this process's first context (llvmpipe reads the
    variable once); a GPU ignores it.
    """
    if any(name in os.environ for name in QUICK_JIT_ENV):
        return False
    os.environ.update(QUICK_JIT_ENV)
    return True


def device_info(ctx) -> DeviceInfo:
    info = ctx.info
    return DeviceInfo(
        vendor=str(info.get("GL_VENDOR", "?")),
        renderer=str(info.get("GL_RENDERER", "?")),
        version=str(info.get("GL_VERSION", "?")),
        device_index=None,
        software=_is_software(ctx),
    )
