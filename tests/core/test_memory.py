"""ReleaseMemoryMiddleware (a tiny app on a real uvicorn): after a request that moved more than its threshold (body in or
response out), the freed heap goes back to the OS (malloc_trim); small requests cost nothing."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from carme.memory import ReleaseMemoryMiddleware
from tests.polling import wait_until
from tests.serving import serve


async def echo(request: Request) -> Response:
    return Response(await request.body())


def test_big_requests_give_memory_back_small_ones_do_not() -> None:
    app = Starlette(routes=[Route("/echo", echo, methods=["POST"])])
    released = ReleaseMemoryMiddleware(app, threshold=1024 * 1024)
    assert released._trim is not None  # glibc: malloc_trim is there
    with serve(released) as served, served.client() as client:
        assert client.post("/echo", content=b"small").content == b"small"
        assert released.trims == 0
        big = b"x" * (2 * 1024 * 1024)
        assert client.post("/echo", content=big).content == big
        # after the response went out
        wait_until(lambda: released.trims == 1, "the trim after the big request")
        assert client.post("/echo", content=b"small again").content == b"small again"
        assert released.trims == 1
