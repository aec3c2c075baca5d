"""One program by name, and the passes of one of its versions: what every per-program query needs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from corpus.errors import NotFoundError, UsageProblem
from corpus.models import Blob, Program, RenderPass, Source
from corpus.records import parse_program_key


def find_program(s, key: str) -> Program:
    """The program named ``SOURCE:ID`` in session ``s``; a clear error when there is none."""
    try:
        source, external_id = parse_program_key(key)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from exc
    program = s.execute(
        select(Program).join(Source).where(Source.name == source, Program.external_id == external_id)
    ).scalar_one_or_none()
    if program is None:
        raise NotFoundError(f"no program {key} in the catalogue", hint="list programs with: corpus ls")
    return program


def version_passes(s, version_id: int, *, with_code: bool = True) -> list[dict[str, Any]]:
    """The passes of one program version, in order, with their code."""
    rows = s.execute(
        select(RenderPass, Blob.text)
        .join(Blob, Blob.sha256 == RenderPass.code_sha256)
        .where(RenderPass.version_id == version_id)
        .order_by(RenderPass.position)
    ).all()
    out = []
    for p, code in rows:
        item = {"name": p.name, "type": p.type, "code_sha256": p.code_sha256, "inputs": p.inputs}
        if with_code:
            item["code"] = code
        out.append(item)
    return out
