"""The fetcher's keep-alive transport: connections reused per host, a connection the server
closed replaced without an error, and httpx's exceptions for broken connections."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from harvest.fetcher import Fetcher, FetchPolicy
from harvest.transport import KeepAliveTransport
from tests.harvest.fixture_server import Answer, FixtureServer


@pytest.fixture
def server():
    with FixtureServer(keep_alive=True) as s:
        s.route("/robots.txt", Answer(200, b"", {"Content-Type": "text/plain"}))
        yield s


async def fetch_all(urls: list[str], concurrency: int = 2) -> list:
    async with Fetcher(FetchPolicy(delay=0.0, concurrency=concurrency, backoff_base=0.05)) as f:
        return await asyncio.gather(*(f.fetch(u) for u in urls))


def test_requests_to_one_host_reuse_its_connections(server):
    urls = [server.route(f"/item/{i}", Answer(200, f'{{"n": {i}}}'.encode())) for i in range(30)]
    responses = asyncio.run(fetch_all(urls, concurrency=2))
    assert [r.content for r in responses] == [f'{{"n": {i}}}'.encode() for i in range(30)]
    assert len({h.peer_port for h in server.hits}) <= 2  # robots.txt and 30 items on two connections


def test_a_connection_the_server_closed_is_replaced_quietly(server):
    json_type = {"Content-Type": "application/json"}
    closing = json_type | {"Connection": "close"}
    urls = [
        server.route(f"/item/{i}", Answer(200, b"{}", closing if i % 3 == 0 else json_type)) for i in range(9)
    ]
    responses = asyncio.run(fetch_all(urls, concurrency=1))
    assert all(r.status == 200 for r in responses)
    assert len(server.hits) == 10  # robots.txt and each item once: no retry was needed
    assert len({h.peer_port for h in server.hits}) >= 4


def test_a_reset_connection_raises_httpx_errors():
    async def get(url: str) -> None:
        async with httpx.AsyncClient(transport=KeepAliveTransport()) as client:
            await client.get(url)

    with FixtureServer() as s:
        url = s.route("/reset", Answer(cut="reset"))
        with pytest.raises(httpx.TransportError):
            asyncio.run(get(url))
        with pytest.raises(httpx.ConnectError):
            asyncio.run(get("http://127.0.0.1:9/nothing-listens-here"))
