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

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> RenderProgram:
        """A program from corpus's work item (:func:`corpus.validations.load_program`), a snapshot
        manifest line with its code, or :meth:`to_item`'s output."""
        passes = tuple(
            RenderPassSource(p["name"], p["type"], p.get("code") or "", tuple(p.get("inputs") or ()))
            for p in item["passes"]
        )
        return cls(item["program"], item["dialect"], passes, item.get("code_sha256", ""))

    def to_item(self) -> dict[str, Any]:
        """The work item a sandboxed worker takes (plain data, as corpus hands it out)."""
        return {
            "program": self.key,
            "dialect": self.dialect,
            "code_sha256": self.code_sha256 or self.key,
            "passes": [
                {"name": p.name, "type": p.type, "code": p.code, "inputs": [dict(i) for i in p.inputs]}
                for p in self.passes
            ],
        }

    def pass_of_type(self, pass_type: str) -> list[RenderPassSource]:
        return [p for p in self.passes if p.type == pass_type]
