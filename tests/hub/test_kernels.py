"""Kernels of a server a real JupyterHub spawned: their activity reaches the hub, and stopping the
server from the hub stops them."""

from __future__ import annotations

import os
import signal
from datetime import datetime

import httpx
import pytest

from tests.hub.hubenv import Hub, auth
from tests.kernels.wsclient import Client
from tests.polling import await_until, wait_until
from tests.processes import kernel_processes, pid_alive

# The first hub test installs JupyterHub and configurable-http-proxy (tests/hub/hubenv.py).
pytestmark = pytest.mark.timeout(300)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_kernel_activity_reaches_the_hub(hub: Hub, alice: str) -> None:
    token = hub.token("alice")
    async with httpx.AsyncClient(base_url=alice, headers=auth(token), timeout=60) as client:
        kernel = (await client.post("api/kernels", json={"name": "python3"})).json()
        client_ws = await Client.open("ws" + alice[len("http"):].rstrip("/"), kernel["id"], headers=auth(token))
        try:
            await client_ws.run("print(6 * 7)")
        finally:
            await client_ws.close()
        # Read without counting as activity: what the kernel did last is the newest activity.
        model = (await client.get(f"api/kernels/{kernel['id']}", params={"no_track_activity": "1"})).json()
        kernel_activity = parse_time(model["last_activity"])

        def hub_activity() -> datetime:
            return parse_time(hub.server_model("alice")["last_activity"])  # type: ignore[index]

        await await_until(hub_activity, "the kernel's activity reported to the hub",
                          check=lambda when: when >= kernel_activity)
        await client.delete(f"api/kernels/{kernel['id']}")


async def test_stopping_from_the_hub_stops_kernels(hub: Hub) -> None:
    url = hub.start_server("carol")
    token = hub.token("carol")
    async with httpx.AsyncClient(base_url=url, headers=auth(token), timeout=60) as client:
        kernel = (await client.post("api/kernels", json={"name": "python3"})).json()
    ws = await Client.open("ws" + url[len("http"):].rstrip("/"), kernel["id"], headers=auth(token))
    try:
        pid = int((await ws.run("import os; print(os.getpid())")).strip())
    finally:
        await ws.close()
    assert pid_alive(pid)
    hub.stop_server("carol")
    wait_until(lambda: not pid_alive(pid), "the kernel gone with its server")
    # The proxy no longer leads to carme: the hub answers, offering to start the server again.
    gone = httpx.get(url + "api/status", headers=auth(token))
    assert gone.status_code == 302 and gone.headers["location"].startswith("/hub/")


def test_sigterm_as_kubespawner_sends_leaves_no_kernel(hub: Hub) -> None:
    # KubeSpawner stops a pod with SIGTERM (then SIGKILL after a grace period), not the SIGINT
    # of the local spawners: carme shuts its kernels down on either.
    url = hub.start_server("erin")
    token = hub.token("erin")
    server_pid = int(hub.server_model("erin")["state"]["pid"])  # type: ignore[index]
    with httpx.Client(base_url=url, headers=auth(token), timeout=60) as client:
        kernel = client.post("api/kernels", json={"name": "python3"}).json()
    [kernel_pid] = wait_until(lambda: kernel_processes(kernel["id"]), "the kernel's process")
    os.kill(server_pid, signal.SIGTERM)
    wait_until(lambda: not pid_alive(server_pid), "carme stopped by SIGTERM")
    assert not pid_alive(kernel_pid)  # stopped before carme exited, not after
    hub.stop_server("erin")
