"""What several harvest test modules share: the fixture documents crawls are served, the fetch
policy for loopback, a look at what was stored, a crawl run as a separate process (to be killed),
and an import reader that dies mid-way."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy import select

from corpus.models import Program
from harvest.fetcher import FetchPolicy
from tests.conftest import ROOT

KEY = "s3cretKey"
HTML = {"Content-Type": "text/html"}


def shader(sid: str, n: int, date: int = 1700000000) -> bytes:
    """The Shadertoy API's answer ``{"Shader": …}`` for shader ``sid``, its code numbered ``n``."""
    code = f"void mainImage(out vec4 c, in vec2 p){{ c = vec4(p / iResolution.xy, 0.{n}, 1.0); }}"
    return json.dumps(
        {
            "Shader": {
                "ver": "0.1",
                "info": {"id": sid, "name": f"api shader {n}", "username": "apiuser", "date": str(date)},
                "renderpass": [
                    {
                        "inputs": [],
                        "outputs": [{"id": 37, "channel": 0}],
                        "code": code,
                        "name": "Image",
                        "description": "",
                        "type": "image",
                    }
                ],
            }
        }
    ).encode()


def gallery(ids) -> bytes:
    """A GLSL Sandbox gallery page linking to the effects ``ids`` (``"12.0"``)."""
    links = "".join(f'<a href="/e#{i}"><img src="/thumbs/{i}.png"></a>' for i in ids)
    return f"<!DOCTYPE html><html><body>{links}</body></html>".encode()


def item(n: int) -> bytes:
    """A GLSL Sandbox ``/item/N.0`` answer, its code numbered ``n``."""
    code = f"uniform float time; void main(){{ gl_FragColor = vec4(sin(time*{n}.0), 0.5, 0.2, 1.0); }}"
    return json.dumps({"code": code, "user": f"user{n}", "parent": None}).encode()


def fast() -> FetchPolicy:
    """Politeness off for loopback: no delay, short backoff and timeout."""
    return FetchPolicy(delay=0.0, backoff_base=0.05, timeout=2.0)


def stored(catalogue) -> list[str]:
    """The external ids of the programs in the catalogue, sorted."""
    with catalogue.session() as s:
        return sorted(s.execute(select(Program.external_id)).scalars())


def crawl_process(source: str, base_url: str, db: Path, *options: str) -> tuple[list[str], subprocess.Popen]:
    """``harvest crawl SOURCE`` with ``--json`` in a process of its own, so a test can SIGKILL it;
    returns the command (to run again) and the running process."""
    cmd = [sys.executable, "-m", "harvest.cli", "crawl", source, "--base-url", base_url, "--db", str(db)]
    cmd += [*options, "--json"]
    return cmd, subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def dies_after(n: int, read_records: Callable[..., Iterator]) -> Callable[..., Iterator]:
    """``read_records`` that raises KeyboardInterrupt at its ``n``-th item: an import killed
    mid-way (monkeypatch ``harvest.importing.read_records`` with it)."""

    def read(path, fmt, **options):
        for i, item in enumerate(read_records(path, fmt, **options)):
            if i == n:
                raise KeyboardInterrupt
            yield item

    return read
