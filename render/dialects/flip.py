"""The image pass drawn upside down, so that 8-bit pictures read top row first with no CPU flip.

OpenGL's framebuffer rows start at the bottom of the picture; arrays, PNGs and tensors start at
the top. Reading rows bottom-up and flipping them on the CPU costs as much as a whole 256² frame
on a GPU (benchmarks/RESULTS.md), so the pass whose picture is read back in 8 bits draws its top
row into the framebuffer's first row instead, and the program sees exactly what it sees upright:

* ``gl_FragCoord`` is redeclared ``layout(origin_upper_left)``: at framebuffer row ``r`` of an
  ``h``-row target it reads ``h - r - 0.5``, the height of the row the program draws there, so
  Shadertoy's ``fragCoord`` and every use of ``gl_FragCoord`` keep their bottom-left origin;
* ``dFdy`` is negated (the hardware takes it along framebuffer rows, which now run downwards);
  ``fwidth`` only uses magnitudes. On llvmpipe, whose derivatives are per row (``dFdx``) and per
  column (``dFdy``) of each 2×2 quad, this draws the upright picture bit for bit at even heights.
  At odd heights upside down the quads pair other rows, so there the engine draws a pass that
  :func:`takes_vertical_derivatives` as written and flips its rows on the CPU.

Buffers and backbuffers are not flipped: only the pass whose 8-bit picture is read. A pass this
cannot draw exactly as upright gets None and is read the old way, with a CPU flip:

* one that redeclares ``gl_FragCoord`` itself or interpolates at an offset;
* one that reads a texture through a mipmap filter: a lookup picks its mipmap level once per 2×2
  quad from one of the quad's rows, which upside down is the other row (measured on llvmpipe: up
  to 4 levels of 255 apart on 11 % of the pixels of the bundled rippled-photo example);
* one with interpolated inputs (texture coordinates of plain GLSL and ISF code, GLSL Sandbox's
  ``surfacePosition``): the rasteriser interpolates them from another position, which rounds
  differently (1 level of 255 on some pixels). Shadertoy and twigl code has none.
"""

from __future__ import annotations

import re
from dataclasses import replace

from render.dialects.plan import PassPlan, fragment_inputs
from render.dialects.prelude import insert_prelude

_TYPES = ("float", "vec2", "vec3", "vec4")
_NOT_FLIPPABLE = re.compile(r"\bin\s+vec4\s+gl_FragCoord\b|\binterpolateAt\w+\b")
_DERIVATIVES = ("dFdy", "dFdyFine", "dFdyCoarse")  # the last two: GLSL 4.00 code only
_VERTICAL = re.compile(r"\b(?:dFdy|fwidth)(?:Fine|Coarse)?\b")


def _negated(name: str) -> str:
    helpers = "".join(f"{t} _ip_flip_{name}({t} v) {{ return -{name}(v); }}\n" for t in _TYPES)
    return helpers + f"#define {name} _ip_flip_{name}\n"


def upside_down(p: PassPlan) -> PassPlan | None:
    """``p`` drawn with its top row in the framebuffer's first row, as the module docstring says,
    or None for a pass this cannot adapt for sure."""
    if _NOT_FLIPPABLE.search(p.fragment):
        return None
    if any(str(b.sampler.get("filter", "")).lower() == "mipmap" for b in p.bindings):
        return None
    if fragment_inputs(p.fragment):
        return None
    used = [name for name in _DERIVATIVES if name == "dFdy" or re.search(rf"\b{name}\b", p.fragment)]
    prelude = "layout(origin_upper_left) in vec4 gl_FragCoord;\n" + "".join(_negated(n) for n in used)
    return replace(p, fragment=insert_prelude(p.fragment, prelude))


def takes_vertical_derivatives(p: PassPlan) -> bool:
    """Whether the pass's code takes derivatives along columns (``dFdy``, ``fwidth``)."""
    return _VERTICAL.search(p.fragment) is not None
