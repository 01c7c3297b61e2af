"""read_body on a real uvicorn: the buffer follows the bytes that arrived, not the Content-Length
a client declares; bodies of every shape come back whole."""

from __future__ import annotations

import queue
import socket
import tracemalloc
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from carme.api.util import read_body
from tests.serving import Served, serve

MB = 1024 * 1024


class Reader:
    """A route that reads its body with read_body and tells the test what it read and what the
    read allocated at most (tracemalloc, on while the test runs)."""

    def __init__(self) -> None:
        self.done: queue.Queue[tuple[bytes | None, int]] = queue.Queue()

    async def read(self, request: Request) -> Response:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        body: bytes | None = None
        try:
            body = bytes(await read_body(request))
        except ClientDisconnect:
            pass
        self.done.put((body, tracemalloc.get_traced_memory()[1] - before))
        return Response(status_code=204)


@pytest.fixture(scope="module")
def reader() -> Iterator[tuple[Reader, Served]]:
    route = Reader()
    tracemalloc.start()
    try:
        with serve(Starlette(routes=[Route("/", route.read, methods=["PUT"])])) as served:
            yield route, served
    finally:
        tracemalloc.stop()


def test_a_declared_size_reserves_nothing_before_the_bytes_arrive(reader: tuple[Reader, Served]) -> None:
    route, served = reader
    with socket.create_connection(("127.0.0.1", served.port)) as client:
        # 400 MB promised, a few bytes sent, then the client is gone.
        client.sendall(b"PUT / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n" % (400 * MB) + b"x" * 1000)
        client.shutdown(socket.SHUT_WR)
        body, peak = route.done.get(timeout=60)
    assert body is None  # it never came whole
    assert peak < MB, f"{peak / MB:.1f} MB allocated for 1000 bytes"


@pytest.mark.parametrize("size", [0, 1000, MB, MB + 1, 5 * MB + 123])
def test_bodies_come_back_whole_and_cost_about_their_size(reader: tuple[Reader, Served], size: int) -> None:
    route, served = reader
    sent = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
    assert httpx.put(served.url, content=sent).status_code == 204
    body, peak = route.done.get(timeout=60)
    assert body == sent
    # The buffer (with bytearray's spare eighth), the bytes() copy the route makes of it, a chunk
    # in flight: never a second copy of the body.
    assert peak < 2.2 * size + MB, f"{peak / MB:.1f} MB for {size / MB:.1f} MB"


def test_a_body_without_a_length_comes_back_whole(reader: tuple[Reader, Served]) -> None:
    route, served = reader
    parts = [b"a" * 70_000, b"b" * 3 * MB, b"c"]
    assert httpx.put(served.url, content=iter(parts)).status_code == 204  # chunked
    assert route.done.get(timeout=60)[0] == b"".join(parts)
