"""Fixtures for the widgets tests: carme with the widgets extension, a real ipykernel, a frontend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from carme import create_app
from carme.hooks import hookimpl
from tests.conftest import TOKEN
from tests.serving import Served, serve
from tests.widgets.frontend import Frontend

T = TypeVar("T")


class LoopProbe:
    """A plugin that remembers the server and its event loop, so tests can call the widgets
    service's async API on the loop the server runs on."""

    def __init__(self) -> None:
        self.server: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None

    @hookimpl
    def carme_startup(self, server: Any) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()

    @property
    def widgets(self) -> Any:
        return self.server.services["widgets"]

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the server's loop and await its result from the test's loop."""
        assert self.loop is not None
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))


@pytest.fixture
def probe() -> LoopProbe:
    return LoopProbe()


@pytest.fixture
def served(root: Path, probe: LoopProbe) -> Iterator[Served]:
    """carme with the widgets extension (overrides the core fixture, so ``client`` talks to it)."""
    app = create_app(str(root), token=TOKEN, extensions=["widgets"], plugins=[probe])
    with serve(app) as running:
        yield running


@pytest.fixture
def kernel_id(client: httpx.Client) -> Iterator[str]:
    response = client.post("/api/kernels", json={"name": "python3"})
    assert response.status_code == 201, response.text
    kid = response.json()["id"]
    yield kid
    client.delete(f"/api/kernels/{kid}")


@pytest.fixture
async def frontend(served: Served, kernel_id: str) -> AsyncIterator[Frontend]:
    front = await Frontend.connect(served.ws_url, kernel_id, TOKEN)
    try:
        yield front
    finally:
        await front.close()
