"""The record types that harvest produces and corpus stores, defined once.

Importers and crawl sources turn whatever a source returned into a :class:`ProgramRecord`;
the catalogue (:mod:`corpus.store`) stores it; render and pretrain read programs back through
corpus's API or a snapshot folder. Records are plain dataclasses with no database in sight so
that parsers, licence detection and de-duplication can be tested on their own.

Inputs are normalised here, once, for every source: Shadertoy's API says ``ctype`` and numeric
ids (``257`` is Buffer A's output), its site pages say ``type`` and string ids (``4dXGR8``), and
dumps mix both. :func:`normalise_input` maps them all to ``{channel, kind, ref, sampler}``.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: Pass types, in the order a Shadertoy program runs them.
PASS_TYPES = ("common", "buffer", "cubemap", "image", "sound")

#: Input kinds (DESIGN "Records and names").
INPUT_KINDS = (
    "buffer",
    "cubemap",
    "texture",
    "volume",
    "video",
    "music",
    "musicstream",
    "mic",
    "keyboard",
    "webcam",
)

#: Every dialect a program may be written in.
TWIGL_MODES = tuple(
    f"twigl-{family}{suffix}"
    for family in ("classic", "geek", "geeker", "geekest")
    for suffix in ("", "-300es", "-mrt")
)
#: ``gl-transition`` is a gl-transitions ``vec4 transition(vec2 uv)`` body (from/to images, ``progress``).
DIALECTS = ("shadertoy", *TWIGL_MODES, "glslsandbox", "glsl", "isf", "gl-transition")

#: Shadertoy's ids for pass outputs: numeric in the API, strings on the site pages.
_SHADERTOY_OUTPUT_IDS: dict[str, str] = {
    "257": "Buffer A",
    "258": "Buffer B",
    "259": "Buffer C",
    "260": "Buffer D",
    "41": "Cube A",
    "4dXGR8": "Buffer A",
    "XsXGR8": "Buffer B",
    "4sXGR8": "Buffer C",
    "XdfGR8": "Buffer D",
    "4dX3Rr": "Cube A",
}
#: Preview images the site uses for buffer inputs (``/media/previz/buffer00.png`` is Buffer A).
_PREVIZ_BUFFERS = {
    "buffer00": "Buffer A",
    "buffer01": "Buffer B",
    "buffer02": "Buffer C",
    "buffer03": "Buffer D",
    "cubemap00": "Cube A",
}
_KIND_ALIASES = {"cubemap": "cubemap", "cube": "cubemap", "tex": "texture", "3dtexture": "volume"}


def canonical_pass_name(name: str | None, pass_type: str | None = None) -> str:
    """Return the canonical pass name: ``"Buf A"`` and ``"buffer_a"`` become ``"Buffer A"``.

    Sources spell pass names several ways; snapshot files and buffer references need one.
    """
    raw = (name or "").strip()
    key = raw.lower().replace("_", " ").replace("-", " ")
    key = " ".join(key.split())
    for prefix in ("buffer ", "buf "):
        if key.startswith(prefix) and len(key) == len(prefix) + 1 and key[-1] in "abcd":
            return f"Buffer {key[-1].upper()}"
    if key in ("cube a", "cubemap a", "cube"):
        return "Cube A"
    if key in ("image", "common", "sound"):
        return key.capitalize()
    if not key and pass_type:
        return {"image": "Image", "common": "Common", "sound": "Sound", "cubemap": "Cube A"}.get(
            pass_type, pass_type.capitalize()
        )
    return raw or "Image"


@dataclass(frozen=True)
class InputRecord:
    """One channel input of a pass, normalised (see :func:`normalise_input`)."""

    channel: int
    kind: str
    ref: str | None = None
    sampler: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"channel": self.channel, "kind": self.kind, "ref": self.ref, "sampler": dict(self.sampler)}


def normalise_input(raw: dict[str, Any], default_channel: int = 0) -> InputRecord:
    """Turn one Shadertoy-style input (API, site page or dump) into an :class:`InputRecord`.

    Accepts ``ctype``/``type`` for the kind, ``src``/``filepath`` for the asset, numeric or string
    ids. For buffers and Cube A the ``ref`` is the producing pass's canonical name ("Buffer A");
    for assets it is the asset path, so the renderer can pick a deterministic stand-in.
    Unknown kinds are kept lower-cased rather than dropped: the renderer marks them unsupported.
    """
    kind = str(raw.get("ctype") or raw.get("type") or "texture").strip().lower()
    kind = _KIND_ALIASES.get(kind, kind)
    try:
        channel = int(raw.get("channel", default_channel))
    except (TypeError, ValueError):
        channel = default_channel
    asset = raw.get("src") or raw.get("filepath") or raw.get("previewfilepath")
    raw_id = raw.get("id")
    ref: str | None = None
    if kind in ("buffer", "cubemap"):
        ref = _SHADERTOY_OUTPUT_IDS.get(str(raw_id)) if raw_id is not None else None
        if ref is None and isinstance(asset, str):
            stem = asset.rsplit("/", 1)[-1].split(".", 1)[0]
            ref = _PREVIZ_BUFFERS.get(stem)
        if ref is None and kind == "buffer" and isinstance(raw_id, str) and raw_id.strip():
            ref = canonical_pass_name(raw_id)
        if ref is None and kind == "cubemap":
            ref = asset if isinstance(asset, str) else None
    else:
        ref = asset if isinstance(asset, str) else (str(raw_id) if raw_id is not None else None)
    sampler_raw = raw.get("sampler") or {}
    sampler = (
        {str(k): str(v) for k, v in sampler_raw.items() if v is not None}
        if isinstance(sampler_raw, dict)
        else {}
    )
    return InputRecord(channel=channel, kind=kind, ref=ref, sampler=sampler)


@dataclass
class PassRecord:
    """One render pass: its canonical name, type, exact code and inputs."""

    name: str
    type: str
    code: str
    inputs: list[InputRecord] = field(default_factory=list)

    @property
    def code_sha256(self) -> str:
        return sha256_text(self.code)


@dataclass
class ProgramRecord:
    """A program as a source described it, ready for the catalogue.

    ``source`` names the site (``shadertoy``), not the path it came by, so that a dump import and
    a crawl of the same program meet on ``(source, external_id)``. ``origin`` says where this
    copy was read (``path:line`` or a URL) and becomes the program's provenance.
    ``licence_field`` is what a dump claimed (evidence, not a verdict); ``repo_licence_text`` is
    the text of a LICENSE file that covers the program (a directory or repository import).
    """

    source: str
    external_id: str
    dialect: str
    passes: list[PassRecord]
    title: str | None = None
    author: str | None = None
    description: str | None = None
    tags: list[str] = field(default_factory=list)
    url: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    parent: str | None = None
    licence_field: str | None = None
    repo_licence_text: str | None = None
    repo_licence_path: str | None = None
    origin: str | None = None
    raw_document_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """``SOURCE:ID``, the name users type."""
        return f"{self.source}:{self.external_id}"

    @property
    def code_sha256(self) -> str:
        """Hash of the whole program (every pass's name, type, code hash and inputs).

        Two records with this same hash render identically, which is what a snapshot pins.
        """
        return program_code_sha256(self.passes)

    def image_pass(self) -> PassRecord | None:
        for p in self.passes:
            if p.type == "image":
                return p
        return None


def sha256_text(text: str) -> str:
    """sha256 of the exact UTF-8 bytes of ``text`` (the blob key)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def program_code_sha256(passes: list[PassRecord]) -> str:
    canonical = [
        [p.name, p.type, p.code_sha256, [i.to_json() for i in sorted(p.inputs, key=lambda i: i.channel)]]
        for p in passes
    ]
    payload = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(payload.encode("ascii")).hexdigest()


def parse_program_key(key: str) -> tuple[str, str]:
    """Split ``SOURCE:ID`` into its parts; the id may itself contain colons."""
    source, sep, external_id = key.partition(":")
    if not sep or not source or not external_id:
        raise ValueError(f"{key!r} is not a program name; write it as SOURCE:ID, e.g. shadertoy:4dXGR8")
    return source, external_id


#: Longest author key stored: casefolding and NFKC can lengthen a name (``ß`` -> ``ss``).
AUTHOR_KEY_MAX = 1024


def author_key(author: str | None) -> str | None:
    """The one form in which authors are compared: NFKC-normalised, casefolded, stripped.

    Takedowns, ``corpus ls --author`` and snapshots all compare this key (stored in
    ``program.author_key`` and ``exclusion.author_key``), never a database's ``lower()``, which
    folds ASCII only on SQLite: "Émile" and "émile", "STRASSE" and "straße" are one author.
    ``None`` for no author or a blank one.
    """
    if author is None:
        return None
    key = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", author).casefold()).strip()
    return key[:AUTHOR_KEY_MAX] or None
