"""GLSL ES (WebGL 1 and 2) to desktop GLSL 3.30 core, for the idioms desktop compilers reject.

Everything we render is compiled as ``#version 330 core`` so that one vertex shader, one context
and one set of rules serve every dialect. WebGL code trips desktop GLSL on Mesa in known ways,
each handled here and nowhere else:

* identifiers that desktop GLSL reserves but WebGL accepts (``packed``, ``row_major``; and for
  GLSL ES 1.00 code also ``flat``, ``smooth``, ``layout``, ``centroid`` …) are renamed;
* GLSL ES 1.00 built-ins that core GLSL dropped (``texture2D``, ``textureCube``, the ``EXT`` lod
  and grad variants, ``gl_FragColor``, ``gl_FragData``, ``varying``) are mapped onto core ones by
  helper functions declared before the user's code, so a user variable named ``texture`` still works;
* ``#version`` and WebGL-only ``#extension`` lines are dropped (their features are core in 3.30);
* moderngl expands ``#include "…"`` itself, even inside comments, so the directive is defused
  (WebGL has no ``#include``: real code that needs one fails to compile, as it would on the site);
* Mesa's preprocessor glues a macro argument's leading sign onto a sign before the parameter
  (``#define S(a) 0.5-a`` then ``S(-0.02)`` → ``0.5--0.02``, a decrement): a space keeps them apart.

What a browser gives WebGL code beyond the language (``GL_ES``, zeroed locals …) is
:mod:`render.dialects.webgl`'s.
"""

from __future__ import annotations

import re

from corpus.glsl import strip_comments

#: Words desktop GLSL 3.30 reserves that GLSL ES 3.00 code (WebGL 2) may use as names.
RESERVED_FOR_ES3 = ("packed", "row_major")
#: The same for GLSL ES 1.00 (WebGL 1): version 1.00 reserves far fewer words.
RESERVED_FOR_ES1 = (
    *RESERVED_FOR_ES3,
    "flat",
    "smooth",
    "layout",
    "centroid",
    "noperspective",
    "sample",
    "patch",
    "subroutine",
)

_VERSION = re.compile(r"^[ \t]*#[ \t]*version\b[^\n]*", re.M)
_EXTENSION = re.compile(r"^[ \t]*#[ \t]*extension[ \t]+(\w+)[^\n]*", re.M)
_INCLUDE = re.compile(r"#([ \t]*)include\b")
_FUNCTION_MACRO = re.compile(r"^([ \t]*#[ \t]*define[ \t]+\w+\(([^)\n]*)\))((?:\\\r?\n|[^\n])*)", re.M)
_VARYING = re.compile(r"\bvarying\b")
_FRAG_DATA = re.compile(r"\bgl_FragData\b")
_FRAG_DEPTH_EXT = re.compile(r"\bgl_FragDepthEXT\b")
_ES1_MARKERS = re.compile(r"\b(gl_FragColor|gl_FragData|texture2D|textureCube|varying)\b")

#: Extensions whose features are core in GLSL 3.30: asking for them on desktop is an error.
_WEBGL_EXTENSIONS = {
    "GL_OES_standard_derivatives",
    "GL_EXT_shader_texture_lod",
    "GL_EXT_frag_depth",
    "GL_EXT_draw_buffers",
    "GL_OES_texture_3D",
}

#: Core-profile stand-ins for GLSL ES 1.00 texture functions. They are declared before the user's
#: code and the old names are macros onto them, so the user may still name a variable ``texture``.
ES1_TEXTURE_HELPERS = """\
vec4 _ip_tex2D(sampler2D s, vec2 p) { return texture(s, p); }
vec4 _ip_tex2D(sampler2D s, vec2 p, float bias) { return texture(s, p, bias); }
vec4 _ip_tex2DProj(sampler2D s, vec3 p) { return textureProj(s, p); }
vec4 _ip_tex2DProj(sampler2D s, vec4 p) { return textureProj(s, p); }
vec4 _ip_tex2DLod(sampler2D s, vec2 p, float lod) { return textureLod(s, p, lod); }
vec4 _ip_tex2DGrad(sampler2D s, vec2 p, vec2 dx, vec2 dy) { return textureGrad(s, p, dx, dy); }
vec4 _ip_texCube(samplerCube s, vec3 p) { return texture(s, p); }
vec4 _ip_texCube(samplerCube s, vec3 p, float bias) { return texture(s, p, bias); }
vec4 _ip_texCubeLod(samplerCube s, vec3 p, float lod) { return textureLod(s, p, lod); }
#define texture2D _ip_tex2D
#define texture2DProj _ip_tex2DProj
#define texture2DLod _ip_tex2DLod
#define texture2DLodEXT _ip_tex2DLod
#define texture2DGradEXT _ip_tex2DGrad
#define textureCube _ip_texCube
#define textureCubeLod _ip_texCubeLod
#define textureCubeLodEXT _ip_texCubeLod
"""

#: The header every fragment shader starts with.
DESKTOP_HEADER = "#version 330 core\n#extension GL_ARB_shading_language_packing : enable\n"


def is_es1(code: str) -> bool:
    """Whether code is written in GLSL ES 1.00 (WebGL 1) rather than ES 3.00 or desktop GLSL."""
    version = _VERSION.search(code)
    if version and re.search(r"\b(300|310|320)\b|\b[1-4][1-6]0\b|\b330\b", version.group(0)):
        return False
    return bool(_ES1_MARKERS.search(strip_comments(code)))


def rename_reserved(code: str, words: tuple[str, ...]) -> str:
    """Rename identifiers desktop GLSL reserves (``packed`` → ``packed_ip``)."""
    if not words:
        return code
    pattern = re.compile(r"\b(" + "|".join(words) + r")\b")
    return pattern.sub(r"\1_ip", code)


def desktop_body(code: str, *, es1: bool) -> str:
    """The user's code made acceptable to a desktop 3.30 compiler (without the header).

    ``#version`` lines go (the header carries ours); WebGL extension requests go; the reserved
    words are renamed; ``#include`` is defused; for GLSL ES 1.00, ``varying`` becomes ``in`` and
    ``gl_FragData``/``gl_FragDepthEXT`` their core forms (``gl_FragColor`` is the caller's: it
    knows which output it declares).
    """
    code = _VERSION.sub("", code)
    code = _EXTENSION.sub(lambda m: "" if m.group(1) in _WEBGL_EXTENSIONS else m.group(0), code)
    code = _INCLUDE.sub(r"#\1 include", code) if "include" in code else code
    code = _FUNCTION_MACRO.sub(_space_signed_parameters, code) if "define" in code else code
    code = rename_reserved(code, RESERVED_FOR_ES1 if es1 else RESERVED_FOR_ES3)
    if es1:
        code = _VARYING.sub("in", code)
        code = _FRAG_DATA.sub("_ip_FragData", code)
        code = _FRAG_DEPTH_EXT.sub("gl_FragDepth", code)
    return code


def _space_signed_parameters(m: re.Match) -> str:
    """A function-like ``#define`` whose body has a space between a ``-``/``+`` and a parameter."""
    params = [p.strip() for p in m.group(2).split(",") if p.strip().isidentifier()]
    if not params:
        return m.group(0)
    body = re.sub(r"(?<=[-+])(?=(?:" + "|".join(params) + r")\b)", " ", m.group(3))
    return m.group(1) + body


def uses(code: str, name: str) -> bool:
    """Whether ``name`` occurs as a whole word in the code outside comments."""
    return re.search(rf"\b{re.escape(name)}\b", strip_comments(code)) is not None


_UNIFORM = re.compile(r"\buniform\b")
_UNIFORM_HEAD = re.compile(r"\buniform\s+(?:(?:lowp|mediump|highp)\s+)?(\w+)\s+")


def _statements(code: str) -> list[str]:
    """The code outside comments cut at each ``;`` (the last piece has none). Uniform declarations
    are searched piece by piece: a pattern run over the whole text from every ``uniform`` to the
    next ``;`` is quadratic in a text of ``uniform`` after ``uniform`` with no ``;`` (ten seconds
    for 16 KB)."""
    return strip_comments(code).split(";")


def declares_uniform(code: str, name: str) -> bool:
    """Whether a statement of the code names ``name`` after the word ``uniform``."""
    wanted = re.compile(rf"\b{re.escape(name)}\b")
    for statement in _statements(code):
        first = _UNIFORM.search(statement)
        if first is not None and wanted.search(statement, first.end()):
            return True
    return False


def uniform_names(code: str) -> dict[str, str]:
    """``{name: type}`` of the uniforms the code declares (``uniform vec2 a, b;`` counts twice)."""
    found: dict[str, str] = {}
    for statement in _statements(code)[:-1]:  # a declaration ends with its ;
        head = next((m for m in _UNIFORM_HEAD.finditer(statement) if m.end() < len(statement)), None)
        if head is None:
            continue
        for part in statement[head.end() :].split(","):
            name = re.match(r"\s*(\w+)", part)
            if name:
                found[name.group(1)] = head.group(1)
    return found


def es1_output(body: str) -> tuple[str, str]:
    """Give WebGL 1 code a core-profile output: ``gl_FragColor`` becomes ``_ip_FragColor`` (or
    ``gl_FragData[i]`` an output array). Returns the new body and the declarations to put first."""
    if "_ip_FragData" in body:  # desktop_body already renamed gl_FragData
        return body, "layout(location = 0) out vec4 _ip_FragData[2];\n" + ES1_TEXTURE_HELPERS
    body = re.sub(r"\bgl_FragColor\b", "_ip_FragColor", body)
    return body, "layout(location = 0) out vec4 _ip_FragColor;\n" + ES1_TEXTURE_HELPERS
