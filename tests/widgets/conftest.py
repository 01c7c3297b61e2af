"""Fixtures for the widgets tests: carme with the widgets extension, a real ipykernel, a frontend."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass
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

    async def execute(self, kernel_id: str, code: str, timeout: float = 60) -> str:
        """Run ``code`` in the kernel over the server's own ZMQ access (no websocket); its stdout."""
        return await self.call(self._execute(kernel_id, code, timeout))

    async def _execute(self, kernel_id: str, code: str, timeout: float) -> str:
        kernel = self.server.kernels.get(kernel_id)
        request = kernel.session.msg("shell", "execute_request", {"code": code, "silent": False})
        output: list[str] = []
        idle = asyncio.Event()

        def on_message(msg: Any) -> None:
            if msg.parent_msg_id != request.msg_id:
                return
            if msg.msg_type == "stream":
                output.append(msg.content["text"])
            elif msg.msg_type == "error":
                output.append(f"{msg.content['ename']}: {msg.content['evalue']}")
            elif msg.msg_type == "status" and msg.content.get("execution_state") == "idle":
                idle.set()

        unsubscribe = kernel.subscribe(on_message)
        # A fresh identity each time: a ROUTER ignores a new peer that reuses a live identity.
        shell = kernel.connect("shell", uuid.uuid4().bytes)
        try:
            await shell.send_multipart(kernel.session.serialize(request))
            await asyncio.wait_for(idle.wait(), timeout)
        finally:
            unsubscribe()
            shell.close(linger=0)
        return "".join(output)


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
    home = tmp_path_factory.mktemp("widgets-jupyter")
    with pytest.MonkeyPatch.context() as env:
        for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR"):
            (home / name).mkdir()
            env.setenv(name, str(home / name))
        env.setenv("JUPYTER_CONFIG_PATH", str(home / "JUPYTER_CONFIG_DIR"))
        env.setenv("JUPYTER_PLATFORM_DIRS", "0")
        root = tmp_path_factory.mktemp("widgets-root")
        probe = LoopProbe()
        app = create_app(str(root), token=TOKEN, extensions=["widgets"], plugins=[probe], config_files=False,
                         environ={}, settings=getattr(request.module, "WIDGETS_SETTINGS", {}))
        with serve(app) as running, httpx.Client(base_url=running.url, timeout=120,
                                                 headers={"Authorization": f"token {TOKEN}"}) as http:
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
async def frontend(served: Served, kernel_id: str) -> AsyncIterator[Frontend]:
    front = await Frontend.connect(served.ws_url, kernel_id)
    try:
        yield front
    finally:
        await front.close()
