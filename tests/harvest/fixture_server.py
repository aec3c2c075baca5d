"""A real HTTP server on 127.0.0.1 for crawler tests: scripted answers and a request log.

Each path has a list of answers used in turn (the last one repeats): a status, headers, a body
and an optional delay before answering; an answer may also be a function of the request (its
:class:`Hit`, body included), for endpoints whose answer depends on what was POSTed. An answer
can also break the connection on purpose (``cut``): reset it without answering, or declare the
whole body in Content-Length and close after sending half of it.
Every request is logged with its arrival and end time, so tests can check the politeness the
fetcher promised (concurrency, delay, Retry-After).
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    delay: float = 0.0
    cut: str | None = None  # "reset": RST instead of an answer; "truncate": half the body, then close


@dataclass
class Hit:
    method: str
    path: str
    headers: dict[str, str]
    start: float
    end: float = 0.0
    body: bytes = b""
    peer_port: int = 0  # the client's port: one per connection, so tests can count connections


class FixtureServer:
    def __init__(self, *, keep_alive: bool = False) -> None:
        """``keep_alive``: speak HTTP/1.1 and keep connections open between requests (the
        default, HTTP/1.0, closes each one after its answer)."""
        self.routes: dict[str, list[Answer | Callable[[Hit], Answer]]] = {}
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        self._active = 0
        self.max_active = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _answer(self) -> None:
                hit = Hit(self.command, self.path, dict(self.headers), time.monotonic())
                hit.peer_port = self.client_address[1]
                hit.body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with server._lock:
                    server.hits.append(hit)
                    server._active += 1
                    server.max_active = max(server.max_active, server._active)
                    answers = server.routes.get(self.path) or [Answer(404, b"not found")]
                    answer = answers.pop(0) if len(answers) > 1 else answers[0]
                if callable(answer):
                    answer = answer(hit)
                try:
                    if answer.delay:
                        time.sleep(answer.delay)
                    if answer.cut == "reset":
                        self._reset()
                        return
                    self.send_response(answer.status)
                    for k, v in answer.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    if answer.cut == "truncate":
                        self.wfile.write(answer.body[: len(answer.body) // 2])
                        self.close_connection = True
                        return
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    hit.end = time.monotonic()
                    with server._lock:
                        server._active -= 1

            def _reset(self) -> None:
                """Close with SO_LINGER 0, so the client gets a TCP reset rather than an end of file
                (the read side is closed first: the socket closes only when nothing refers to it)."""
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.rfile.close()
                self.connection.close()
                self.close_connection = True

            do_GET = _answer
            do_POST = _answer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FixtureServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def route(self, path: str, *answers: Answer | Callable[[Hit], Answer]) -> str:
        self.routes[path] = list(answers)
        return self.base + path

    def hits_for(self, path: str) -> list[Hit]:
        return [h for h in self.hits if h.path == path]
