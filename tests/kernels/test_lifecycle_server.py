"""Idle culling with jupyter_server's settings, and the server's own shutdown leaving nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from carme import create_app
from carme.events import KERNEL_ACTIONS_SCHEMA
from carme.jsonutil import utcnow
from carme.kernels.kernel import Kernel
from tests.polling import await_until
from tests.processes import pid_alive
from tests.serving import TOKEN, serve, serve_here

from .conftest import FAST
from .wsclient import Client


async def sleep_busy(client: Client, kernel: Kernel) -> None:
    """Start a cell that sleeps a minute and wait until the kernel says it is busy with it."""
    msg_id = await client.send("shell", "execute_request", {"code": "import time; time.sleep(60)", "silent": False})
    await client.until(lambda m: m.msg_type == "execute_input" and m.parent_id == msg_id)
    await await_until(lambda: kernel.execution_state == "busy", "the kernel to be busy")


async def test_idle_kernels_are_culled_unless_connected_or_busy(root: Path) -> None:
    """jupyter_server's culling rules, with real websocket clients and a really busy kernel.

    The server runs on the test's loop, so the culler (every 0.05 s) and the test never interleave
    between two lines of the test; ``last_activity`` is set back in time instead of waiting."""
    app = create_app(str(root), token=TOKEN, extensions=[], config_files=False,
                     settings={**FAST, "cull_idle_timeout": 60, "cull_interval": 0.05})
    server = app.server
    events: list[dict[str, Any]] = []

    def culled(kernel: Kernel) -> bool:
        return any(e["schema_id"] == KERNEL_ACTIONS_SCHEMA and e["action"] == "shutdown"
                   and e["kernel_id"] == kernel.id for e in events)

    async with serve_here(app) as served:
        server.events.add_listener(events.append)
        kernel = await server.kernels.start_kernel()
        long_ago = utcnow() - timedelta(seconds=120)
        assert not await server.kernels.cull_if_idle(kernel)  # active a moment ago

        server.settings.set("cull_idle_timeout", 0.0, "test")  # 0: culling off
        kernel.last_activity = long_ago
        assert not await server.kernels.cull_if_idle(kernel)
        kernel.last_activity = utcnow()  # before culling is back on, or the culler would take it
        server.settings.set("cull_idle_timeout", 60.0, "test")

        client = await Client.open(served.ws_url, kernel.id)
        assert kernel.connections == 1
        kernel.last_activity = long_ago
        assert not await server.kernels.cull_if_idle(kernel)  # a client is connected

        await sleep_busy(client, kernel)
        await client.close()
        await await_until(lambda: kernel.connections == 0, "the client to be gone")
        kernel.last_activity = long_ago
        assert not await server.kernels.cull_if_idle(kernel)  # busy

        server.settings.set("cull_busy", True, "test")  # the culler now takes the busy kernel
        await await_until(lambda: culled(kernel), "the culler to shut the busy kernel down")
        assert kernel.id not in server.kernels
        assert kernel.execution_state == "dead" and kernel.pid is not None and not pid_alive(kernel.pid)

        # cull_connected lets the culler stop a kernel that still has a client: its websocket closes.
        other = await server.kernels.start_kernel()
        client = await Client.open(served.ws_url, other.id)
        try:
            other.last_activity = long_ago
            assert not await server.kernels.cull_if_idle(other)
            server.settings.set("cull_connected", True, "test")
            await await_until(lambda: culled(other), "the culler to shut the connected kernel down")
            with pytest.raises(ConnectionClosed):
                while True:
                    await client.recv()
        finally:
            await client.close()


def test_stopping_the_server_leaves_no_kernel_process_or_connection_file(root: Path, jupyter_env: Path) -> None:
    app = create_app(str(root), token="t", extensions=[], config_files=False, settings=FAST)
    headers = {"Authorization": "token t"}
    with serve(app) as running, httpx.Client(base_url=running.url, headers=headers, timeout=90) as http:
        first = http.post("/api/kernels").json()["id"]
        http.post("/api/sessions", json={"path": "nb.ipynb", "type": "notebook"}).raise_for_status()
        kernels = list(app.server.kernels)
        assert len(kernels) == 2 and first in app.server.kernels
        pids = [k.pid for k in kernels]
        files = list((jupyter_env / "runtime").glob("kernel-*.json"))
        assert len(files) == 2 and all(pid is not None and pid_alive(pid) for pid in pids)
    assert not [pid for pid in pids if pid is not None and pid_alive(pid)]
    assert not list((jupyter_env / "runtime").glob("kernel-*.json"))
