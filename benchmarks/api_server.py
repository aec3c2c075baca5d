"""A fast loopback server speaking Shadertoy's API format, run in its own process by the crawl
benchmark so that serving does not share the crawler's GIL (the threaded test fixture server,
HTTP/1.0 with a connection per request, is made for misbehaving on purpose, not for speed).

    python benchmarks/api_server.py --n 5000 [--log requests.tsv]

Prints ``PORT`` on its first stdout line once it listens. Serves ``/robots.txt`` (empty),
``/api/v1/shaders`` (every id) and ``/api/v1/shaders/ID`` (a ~2.5 KB shader made from the id);
HTTP/1.1 with keep-alive, one write per response. ``--log`` appends ``monotonic-start  path`` per
request (the monotonic clock is shared by every process on Linux, so the crawler's own log and
this one can be compared).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
from urllib.parse import urlsplit

BENCH_KEY = "bench"


def shader_id(n: int) -> str:
    return f"b{n:05d}"


def shader(sid: str, n: int) -> bytes:
    """A Shadertoy API answer of about 2.5 KB (real Shadertoy code has a median of about 2 KB)."""
    body = "\n".join(
        f"float f{k}(vec2 p){{ return sin(p.x * {n % 97 + k}.0) * cos(p.y); }}" for k in range(40)
    )
    code = body + "\nvoid mainImage(out vec4 c, in vec2 p){ c = vec4(f1(p), f2(p), 0.5, 1.0); }"
    doc = {
        "Shader": {
            "ver": "0.1",
            "info": {"id": sid, "name": f"bench {n}", "username": "bench", "date": str(1600000000 + n)},
            "renderpass": [{"inputs": [], "outputs": [], "code": code, "name": "Image", "type": "image"}],
        }
    }
    return json.dumps(doc).encode()


class Api:
    """What each path answers: (status, content type, body)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.listing = json.dumps({"Shaders": n, "Results": [shader_id(i) for i in range(n)]}).encode()

    def answer(self, target: str) -> tuple[int, str, bytes]:
        path = urlsplit(target).path
        if path == "/robots.txt":
            return 200, "text/plain", b""
        if path == "/api/v1/shaders":
            return 200, "application/json", self.listing
        if path.startswith("/api/v1/shaders/b"):
            sid = path.rsplit("/", 1)[-1]
            if sid[1:].isdigit() and int(sid[1:]) < self.n:
                return 200, "application/json", shader(sid, int(sid[1:]))
        return 200, "application/json", b'{"Error": "Shader not found"}'


class Http(asyncio.Protocol):
    """Just enough HTTP/1.1 for GETs: keep-alive, no request bodies."""

    def __init__(self, api: Api, log) -> None:
        self.api, self.log, self.buffer = api, log, b""

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            target = head.split(b"\r\n", 1)[0].split(b" ")[1].decode()
            if self.log is not None:
                self.log.write(f"{time.monotonic():.6f}\t{target}\n")
            status, ctype, body = self.api.answer(target)
            head = f"HTTP/1.1 {status} OK\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n"
            self.transport.write(head.encode() + body)


async def serve(n: int, log_path: str | None) -> None:
    api = Api(n)
    log = open(log_path, "a", buffering=1) if log_path else None  # noqa: SIM115 - lives as long as we do
    server = await asyncio.get_running_loop().create_server(lambda: Http(api, log), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000, help="how many shaders the API lists")
    ap.add_argument("--log", help="append one line per request to this file")
    args = ap.parse_args()
    try:
        asyncio.run(serve(args.n, args.log))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
