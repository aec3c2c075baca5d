"""Pure parsers: one source's document in, :class:`corpus.records.ProgramRecord` out.

No I/O and no database here: importers (:mod:`harvest.importers`) feed them local files and
crawl sources feed them fetched documents. Each raises :class:`corpus.errors.InputFormatError`
for a document that cannot be a program; :func:`record_problem` says whether a parsed record
is fit to store (code present and at most :data:`MAX_CODE_BYTES`).
"""

from harvest.formats.common import MAX_CODE_BYTES, clean_metadata, parse_datetime, record_problem
from harvest.formats.glslfile import glsl_file_record, sniff_dialect
from harvest.formats.glslsandbox import glslsandbox_item_record, glslsandbox_records, normalise_parent
from harvest.formats.gltransitions import gltransition_record
from harvest.formats.shadertoy import shadertoy_record, shadertoys_flat_record
from harvest.formats.twigl import parse_twigl_mode, twigl_record

__all__ = [
    "MAX_CODE_BYTES",
    "clean_metadata",
    "glsl_file_record",
    "glslsandbox_item_record",
    "glslsandbox_records",
    "gltransition_record",
    "normalise_parent",
    "parse_datetime",
    "parse_twigl_mode",
    "record_problem",
    "shadertoy_record",
    "shadertoys_flat_record",
    "sniff_dialect",
    "twigl_record",
]
