"""What the renderer needs to know of a program: its dialect and its passes with their code.

Render reads programs through corpus's API or from a snapshot folder and never touches the
program tables itself; both paths end in a :class:`RenderProgram`, the one input of the dialects
(:mod:`render.dialects`) and the engine (:mod:`render.engine`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RenderPassSource:
    """One stored pass: ``name`` ("Image", "Buffer A", "Common"), ``type`` (image, buffer, common,
    cubemap, sound), its code and its normalised inputs ``{channel, kind, ref, sampler}``."""

    name: str
    type: str
    code: str
    inputs: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class RenderProgram:
    """A program as the renderer sees it. ``key`` is ``SOURCE:ID`` (for messages and results)."""

    key: str
    dialect: str
    passes: tuple[RenderPassSource, ...]
    code_sha256: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def single(cls, code: str, dialect: str = "shadertoy", key: str = "inline:program") -> RenderProgram:
        """A one-pass program, for tests, benchmarks and ``render frames --code``."""
        return cls(key, dialect, (RenderPassSource("Image", "image", code),))

    def pass_of_type(self, pass_type: str) -> list[RenderPassSource]:
        return [p for p in self.passes if p.type == pass_type]
