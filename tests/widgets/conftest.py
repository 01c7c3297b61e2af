"""Fixtures for the widgets tests: carme with the widgets extension, a real ipykernel, a frontend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest

from carme.hooks import hookimpl
from tests.kernels.wsclient import Client
from tests.kernels.zmqclient import execute
from tests.serving import Served, serve_isolated

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

    async def execute(self, kernel_id: str, code: str, timeout: float = 60) -> str:
        """Run ``code`` in the kernel over the server's own ZMQ access (no websocket); its stdout
        (and ``ename: evalue`` of an error)."""
        ran = await self.call(execute(self.server.kernels.get(kernel_id), code, timeout))
        return ran.output


@dataclass
class Shared:
    """One carme (widgets on) and one kernel for a whole test module: kernel start-up dominates
    these tests' time, and every test works on widgets of its own."""

    served: Served
    probe: LoopProbe
    kernel_id: str


@pytest.fixture(scope="module")
def shared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    """Settings come from the test module's ``WIDGETS_SETTINGS`` (default: none)."""
    probe = LoopProbe()
    with serve_isolated(tmp_path_factory.mktemp("widgets"), extensions=["widgets"], plugins=[probe], environ={},
                        settings=getattr(request.module, "WIDGETS_SETTINGS", {})) as running, \
            running.client(timeout=120) as http:
        response = http.post("/api/kernels", json={"name": "python3"})
        assert response.status_code == 201, response.text
        kernel_id = response.json()["id"]
        yield Shared(running, probe, kernel_id)
        http.delete(f"/api/kernels/{kernel_id}")


@pytest.fixture
def served(shared: Shared) -> Served:
    """The module's carme with the widgets extension (overrides the core fixture, so ``client``
    talks to it)."""
    return shared.served


@pytest.fixture
def probe(shared: Shared) -> LoopProbe:
    return shared.probe


@pytest.fixture
def kernel_id(shared: Shared) -> str:
    return shared.kernel_id


@pytest.fixture
async def frontend(served: Served, kernel_id: str) -> AsyncIterator[Client]:
    """A websocket client of the module's kernel, as JupyterLab's widget manager uses one."""
    front = await Client.open(served.ws_url, kernel_id)
    try:
        yield front
    finally:
        await front.close()


def widget_state(client: httpx.Client, kernel_id: str) -> dict[str, Any]:
    response = client.get(f"/api/widgets/{kernel_id}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]
