"""ReleaseMemoryMiddleware (a tiny app on a real uvicorn): once requests that moved more than its threshold (body in
or response out) have stopped for a while, the freed heap goes back to the OS (malloc_trim); small requests cost
nothing, and a series of big ones keeps its memory until it ends."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from carme.memory import ReleaseMemoryMiddleware
from tests.polling import wait_until
from tests.serving import serve

BIG = b"x" * (2 * 1024 * 1024)


async def echo(request: Request) -> Response:
    return Response(await request.body())


def released_echo(settle: float) -> ReleaseMemoryMiddleware:
    released = ReleaseMemoryMiddleware(Starlette(routes=[Route("/echo", echo, methods=["POST"])]),
                                       threshold=1024 * 1024, settle=settle)
    assert released._trim is not None  # glibc: malloc_trim is there
    return released


def test_big_requests_give_memory_back_small_ones_do_not() -> None:
    released = released_echo(settle=0.05)
    with serve(released) as served, served.client() as client:
        assert client.post("/echo", content=b"small").content == b"small"
        assert released.trims == 0
        assert client.post("/echo", content=BIG).content == BIG
        wait_until(lambda: released.trims == 1, "the trim after the big request")
        assert client.post("/echo", content=b"small again").content == b"small again"
        assert released.trims == 1


def test_a_series_of_big_requests_keeps_its_memory_until_it_ends() -> None:
    """The pages a trim hands back are faulted in again by the next big request: none while
    big requests keep coming (here: within a minute of each other)."""
    released = released_echo(settle=60)
    with serve(released) as served, served.client() as client:
        for _ in range(3):
            assert client.post("/echo", content=BIG).content == BIG
        assert released.trims == 0
        assert released._timer is not None  # the trim is still to come
