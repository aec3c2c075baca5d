"""A real HTTP server on 127.0.0.1 for crawler tests: scripted answers and a request log.

Each path has a list of answers used in turn (the last one repeats): a status, headers, a body
and an optional delay before answering; an answer may also be a function of the request (its
:class:`Hit`, body included), for endpoints whose answer depends on what was POSTed.
Every request is logged with its arrival and end time, so tests can check the politeness the
fetcher promised (concurrency, delay, Retry-After).
"""

from __future__ import annotations

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


@dataclass
class Hit:
    method: str
    path: str
    headers: dict[str, str]
    start: float
    end: float = 0.0
    body: bytes = b""


class FixtureServer:
    def __init__(self) -> None:
        self.routes: dict[str, list[Answer | Callable[[Hit], Answer]]] = {}
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        self._active = 0
        self.max_active = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _answer(self) -> None:
                hit = Hit(self.command, self.path, dict(self.headers), time.monotonic())
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
                    self.send_response(answer.status)
                    for k, v in answer.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    hit.end = time.monotonic()
                    with server._lock:
                        server._active -= 1

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
