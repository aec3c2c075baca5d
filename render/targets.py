"""The textures and framebuffers a compiled program draws into at one resolution."""

from __future__ import annotations

from typing import Any

import numpy as np

from render.uniforms import size_values


class Targets:
    """The textures and framebuffers of one program at one resolution."""

    def __init__(self, ctx, compiled: Any, size: tuple[int, int]) -> None:
        """``compiled``: the :class:`render.engine.CompiledProgram` drawing here (not imported:
        the engine imports this module)."""
        self.size = size
        self.textures: list[Any] = []
        self.buffers: dict[str, list[Any]] = {}  # name → [latest, spare] textures
        self.buffer_fbos: dict[int, Any] = {}
        for p in compiled.passes[:-1]:
            pair = [self._texture(ctx), self._texture(ctx)]
            self.buffers[p.plan.name] = pair
        image = compiled.passes[-1].plan
        self.image_latest = 0
        self.fbos: dict[tuple[int, ...], Any] = {}
        self.image_fbos: list[Any] = [None, None]
        #: the image pass draws straight into 8 bits: no float picture, no conversion pass
        self.direct = not compiled.float_picture and compiled.plan.feedback_targets() == 0
        self.staging: dict[int, np.ndarray] = {}  # components → bottom-up rows, reused
        if self.direct:
            pictures = [self._texture(ctx, "f1") for _ in range(image.outputs)]
            self.image = [pictures, pictures]  # nothing reads the last frame: one set serves
            self.u8_fbo = None
        else:
            self.image = [[self._texture(ctx) for _ in range(image.outputs)] for _ in range(2)]
            self.u8 = ctx.texture(size, 4, dtype="f1")
            self.textures.append(self.u8)
            self.u8_fbo = ctx.framebuffer([self.u8])
        #: uniform values at this size; the per-frame ones are overwritten by each render
        self.values = size_values(size)
        #: the passes drawn at this size, and whether the picture is drawn upside down
        self.passes, self.upside_down = compiled.passes_at(size[1])

    def _texture(self, ctx, dtype: str = "f4"):
        tex = ctx.texture(self.size, 4, dtype=dtype)
        tex.repeat_x = tex.repeat_y = False
        self.textures.append(tex)
        return tex

    def image_fbo(self, ctx, index: int):
        """The framebuffer of image target set ``index`` (0 or 1)."""
        fbo = self.image_fbos[index]
        if fbo is None:
            fbo = self.image_fbos[index] = self.fbo_for(ctx, self.image[index])
        return fbo

    def fbo_for(self, ctx, textures: list[Any]):
        key = tuple(t.glo for t in textures)
        fbo = self.fbos.get(key)
        if fbo is None:
            fbo = self.fbos[key] = ctx.framebuffer(textures)
        return fbo

    def release(self) -> None:
        for fbo in self.fbos.values():
            fbo.release()
        if self.u8_fbo is not None:
            self.u8_fbo.release()
        for tex in self.textures:
            tex.release()
