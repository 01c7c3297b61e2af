"""Idle culling with jupyter_server's settings, and the server's own shutdown leaving nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from carme import create_app
from carme.events import KERNEL_ACTIONS_SCHEMA
from carme.jsonutil import utcnow
from tests.serving import serve

from tests.polling import await_until
from tests.processes import pid_alive

from .conftest import FAST
from .zmqclient import Collector


async def test_idle_kernels_are_culled_unless_connected_or_busy(root: Path) -> None:
    app = create_app(str(root), token="t", extensions=[], config_files=False,
                     settings={**FAST, "cull_idle_timeout": 60, "cull_interval": 0.05})
    server = app.server
    await server.start()
    events: list[dict[str, Any]] = []
    server.events.add_listener(events.append)
    try:
        kernel = await server.kernels.start_kernel()
        long_ago = utcnow() - timedelta(seconds=120)
        assert not await server.kernels.cull_if_idle(kernel)  # active a moment ago

        server.settings.set("cull_idle_timeout", 0.0, "test")  # 0: culling off
        kernel.last_activity = long_ago
        assert not await server.kernels.cull_if_idle(kernel)
        kernel.last_activity = utcnow()  # before culling is back on, or the culler would take it
        server.settings.set("cull_idle_timeout", 60.0, "test")

        kernel.connections = 1  # as the websocket relay counts them
        kernel.last_activity = long_ago
        assert not await server.kernels.cull_if_idle(kernel)
        kernel.last_activity = utcnow()
        kernel.connections = 0

        collector = Collector(kernel)
        sock = kernel.connect("shell", b"sleeper")
        request = kernel.session.msg("shell", "execute_request", {"code": "import time; time.sleep(60)"})
        await sock.send_multipart(kernel.session.serialize(request))
        await await_until(lambda: kernel.execution_state == "busy" and collector.of_type("execute_input"),
                       what="busy")
        kernel.last_activity = long_ago
        assert not await server.kernels.cull_if_idle(kernel)
        await server.kernels.interrupt_kernel(kernel.id)
        sock.close(linger=0)
        await await_until(lambda: kernel.execution_state == "idle", what="idle after the interrupt")

        # cull_connected lets the culler stop a kernel that still has a client.
        server.settings.set("cull_connected", True, "test")
        kernel.connections = 1
        kernel.last_activity = long_ago
        await await_until(lambda: [e for e in events if e["schema_id"] == KERNEL_ACTIONS_SCHEMA
                                and e["action"] == "shutdown" and e["kernel_id"] == kernel.id],
                       what="the culler to shut the kernel down")
        assert kernel.id not in server.kernels
        assert kernel.execution_state == "dead" and kernel.pid is not None and not pid_alive(kernel.pid)
    finally:
        await server.stop()


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
