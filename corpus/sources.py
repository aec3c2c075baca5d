"""The sites programs come from, with their default licences and terms.

A source names the site, not the path a program came by: ``shadertoy`` whether the program
arrived through the API, the site's pages or a dump. The default licence is what the site's
terms grant when the code says nothing (Shadertoy: CC BY-NC-SA 3.0); ``None`` means the site
grants nothing, so such code is all rights reserved (``NOASSERTION`` / ``unknown``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourceInfo:
    name: str
    base_url: str | None
    default_licence: str | None
    terms_url: str | None
    description: str


SOURCES: dict[str, SourceInfo] = {
    s.name: s
    for s in (
        SourceInfo(
            "shadertoy",
            "https://www.shadertoy.com",
            "CC-BY-NC-SA-3.0",
            "https://www.shadertoy.com/terms",
            "Shadertoy: shaders default to CC BY-NC-SA 3.0 unless the code states another licence",
        ),
        SourceInfo(
            "glslsandbox",
            "https://glslsandbox.com",
            None,
            "https://glslsandbox.com",
            "GLSL Sandbox: uploads carry no licence unless their code states one",
        ),
        SourceInfo(
            "twigl",
            "https://twigl.app",
            None,
            "https://twigl.app",
            "twigl: short shaders, modes classic to geekest",
        ),
        SourceInfo(
            "gl-transitions",
            "https://gl-transitions.com",
            None,
            "https://github.com/gl-transitions/gl-transitions",
            "gl-transitions: each transition records its own licence",
        ),
        SourceInfo("git", None, None, None, "git repositories: their LICENSE file and SPDX lines"),
        SourceInfo("dir", None, None, None, "local folders: their LICENSE file and SPDX lines"),
    )
}


def source_info(name: str) -> SourceInfo:
    """Known sources by name; an unknown one gets no default licence (never guess one)."""
    return SOURCES.get(name) or SourceInfo(name, None, None, None, name)
