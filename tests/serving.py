"""Run an ASGI app on a real uvicorn bound to 127.0.0.1 (a free port) for the duration of a test."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from carme.running import WEBSOCKET_PROTOCOL
from tests.environment import isolated
from tests.polling import await_until, wait_until

# The token of every test server: clients send it as JupyterLab does, in the Authorization header.
TOKEN = "test-token"
AUTH = {"Authorization": f"token {TOKEN}"}

# How long uvicorn may take to start (lifespan start-up included) and to stop (lifespan shutdown:
# kernels are stopped politely, up to their shutdown_wait_time each).
START_S = 60.0
STOP_S = 60.0


@dataclass
class Served:
    """A running server: its base URL (``http://127.0.0.1:PORT``) and the app."""

    url: str
    app: Any
    port: int

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[len("http"):]

    def client(self, timeout: float = 60, **kwargs: Any) -> httpx.Client:
        """An HTTP client of this server authenticated with :data:`TOKEN` (close it, or use ``with``)."""
        return httpx.Client(base_url=self.url, headers=AUTH, timeout=timeout, **kwargs)


@contextlib.contextmanager
def serve(app: Any, **config: Any) -> Iterator[Served]:
    """Serve ``app`` with uvicorn in a background thread (its own event loop), lifespan on, on
    carme's websocket implementation (as ``carme serve``).

    Fails the test when the server does not start within START_S, and when it has not stopped
    STOP_S after being asked to (a hung shutdown must not pass unseen, nor leave a thread behind
    that keeps kernels alive)."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="on", ws_max_size=64 * 1024 * 1024,
                                           **({"ws": WEBSOCKET_PROTOCOL} | config)))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True, name="uvicorn")
    thread.start()

    def started() -> bool:
        if not thread.is_alive():
            raise AssertionError("uvicorn failed to start; see the log above")
        return bool(server.started)

    try:
        wait_until(started, "uvicorn to start", timeout=START_S)
    except BaseException:
        server.should_exit = True
        thread.join(STOP_S)
        raise
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Served(f"http://127.0.0.1:{port}", app, port)
    finally:
        server.should_exit = True
        thread.join(timeout=STOP_S)
        if thread.is_alive():
            server.force_exit = True  # let the next tests run; this one fails
            raise AssertionError(f"uvicorn did not stop within {STOP_S} s of being asked to")


@contextlib.asynccontextmanager
async def serve_here(app: Any, **config: Any) -> AsyncIterator[Served]:
    """Serve ``app`` on the test's own event loop, for tests that call the server's async API
    directly while real clients talk to it: no thread, so no race between the two."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on",
                                           **({"ws": WEBSOCKET_PROTOCOL} | config)))
    task = asyncio.ensure_future(server.serve())
    await await_until(lambda: server.started or task.done(), "uvicorn to start", timeout=START_S)
    if task.done():
        task.result()
        raise AssertionError("uvicorn failed to start; see the log above")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Served(f"http://127.0.0.1:{port}", app, port)
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(task, STOP_S)
        except TimeoutError:
            raise AssertionError(f"uvicorn did not stop within {STOP_S} s of being asked to") from None


@contextlib.contextmanager
def serve_isolated(home: Path, **create_app_args: Any) -> Iterator[Served]:
    """carme serving ``home/root`` in an isolated Jupyter environment in ``home``, for a server
    shared by a test module (the per-test ``jupyter_env`` fixture comes too late for it).

    Token :data:`TOKEN`, no extensions and no config files unless given. At the end no kernel
    connection file may be left behind.
    """
    from carme import create_app

    with isolated(home):
        root = home / "root"
        root.mkdir(exist_ok=True)
        create_app_args = {"token": TOKEN, "extensions": [], "config_files": False, **create_app_args}
        with serve(create_app(str(root), **create_app_args)) as running:
            yield running
    left = list((home / "runtime").glob("kernel-*.json"))
    assert not left, f"connection files left behind: {left}"
