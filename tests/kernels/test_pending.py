"""Pending kernels (jupyter_server's ``use_pending_kernels``): a start request answered at once
with the kernel ``starting``, through a real uvicorn and real kernels. The starts are held at a
gate (tests.kernels.gated) that the test opens, so "while it starts" does not depend on speed."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from carme import create_app
from tests.environment import isolated
from tests.kernels.gated import GatedProvisioners
from tests.kernels.wsclient import Client
from tests.polling import wait_until
from tests.serving import Served, serve_isolated

from .conftest import FAST

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def gated() -> GatedProvisioners:
    slow = GatedProvisioners()
    slow.slow_start = True  # as the gateway's provisioner says of itself
    return slow


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, gated: GatedProvisioners) -> Iterator[Served]:
    # pending_kernels left at null: the provisioner's slow_start decides
    with serve_isolated(tmp_path_factory.mktemp("pending"), plugins=[gated], settings=FAST) as running:
        yield running


@pytest.fixture
def http(served: Served, gated: GatedProvisioners) -> Iterator[httpx.Client]:
    gated.arrived.clear()
    gated.gate.clear()
    try:
        with served.client(timeout=90) as client:
            yield client
    finally:
        gated.gate.set()
        gated.cleanup_gate.set()


def start_held(http: httpx.Client, gated: GatedProvisioners, **body: Any) -> str:
    """POST /api/kernels while the gate is closed: answered at once, the kernel starting."""
    created = http.post("/api/kernels", json=body)
    assert created.status_code == 201, created.text
    model = created.json()
    assert model["execution_state"] == "starting"
    assert created.headers["Location"].endswith(f"/api/kernels/{model['id']}")
    assert gated.arrived.wait(60), "the start never reached the provisioner"
    return str(model["id"])


def state(http: httpx.Client, kernel_id: str) -> str:
    return str(http.get(f"/api/kernels/{kernel_id}").json()["execution_state"])


def listed_state(http: httpx.Client, kernel_id: str) -> str:
    return str({k["id"]: k["execution_state"] for k in http.get("/api/kernels").json()}[kernel_id])


def statuses(client: Client) -> list[str]:
    return [m.content["execution_state"] for m in client.received if m.channel == "iopub" and m.msg_type == "status"]


async def told_dead_and_closed(client: Client, timeout: float = 60) -> str:
    """The client hears ``status: dead``, then its websocket is closed with 1011: the close reason."""
    dead = await client.recv(timeout=timeout)
    assert (dead.msg_type, dead.content) == ("status", {"execution_state": "dead"})
    with pytest.raises(ConnectionClosed) as closed:
        await client.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
    return closed.value.rcvd.reason


def is_idle_after(msg_id: str) -> Any:
    return lambda m: m.msg_type == "status" and m.parent_id == msg_id and m.content["execution_state"] == "idle"


def is_reply_to(msg_id: str) -> Any:
    return lambda m: m.channel == "shell" and m.parent_id == msg_id


@pytest.mark.parametrize("v1", [True, False], ids=["v1", "legacy"])
async def test_a_client_sees_starting_then_idle_and_its_early_request_is_answered(
        http: httpx.Client, gated: GatedProvisioners, served: Served, v1: bool) -> None:
    kernel_id = start_held(http, gated)
    assert state(http, kernel_id) == listed_state(http, kernel_id) == "starting"
    client = await Client.open(served.ws_url, kernel_id, v1=v1)
    try:
        first = await client.recv()
        assert (first.channel, first.msg_type, first.content) == ("iopub", "status", {"execution_state": "starting"})
        early = await client.send("shell", "kernel_info_request", {})  # sent while it starts: kept, then relayed
        assert state(http, kernel_id) == "starting"
        assert http.get("/api/kernels").json()[0]["connections"] == 1
        gated.gate.set()
        reply = await client.wait_for(is_reply_to(early), timeout=60)
        assert reply.msg_type == "kernel_info_reply" and reply.content["status"] == "ok"
        await client.wait_for(is_idle_after(early))  # the kernel's own idle: carme's state is idle by then
        assert statuses(client)[0] == "starting" and "idle" in statuses(client)
        assert state(http, kernel_id) == listed_state(http, kernel_id) == "idle"
        assert await client.run("print(1 + 1)") == "2\n"
    finally:
        await client.close()
    assert http.delete(f"/api/kernels/{kernel_id}").status_code == 204


async def test_delete_while_starting_cancels_the_start(http: httpx.Client, gated: GatedProvisioners,
                                                       served: Served) -> None:
    kernel_id = start_held(http, gated)
    client = await Client.open(served.ws_url, kernel_id)
    try:
        assert (await client.recv()).content == {"execution_state": "starting"}
        assert http.delete(f"/api/kernels/{kernel_id}").status_code == 204  # the gate is still closed
        assert http.get(f"/api/kernels/{kernel_id}").status_code == 404
        assert kernel_id not in {k["id"] for k in http.get("/api/kernels").json()}
        assert "start cancelled" in await told_dead_and_closed(client)
    finally:
        await client.close()
    gated.gate.set()  # the cancelled launch must not go on to spawn the kernel
    runtime = served.app.server.kernels.runtime_dir
    assert not (runtime / f"kernel-{kernel_id}.json").exists()
    assert http.get(f"/api/kernels/{kernel_id}").status_code == 404


def exiting_spec() -> str:
    """A kernel spec whose process exits at once with code 3; its name."""
    spec = Path(os.environ["JUPYTER_DATA_DIR"]) / "kernels" / "exits"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps(
        {"argv": [sys.executable, "-c", "import sys; sys.exit(3)", "{connection_file}"], "display_name": "Exits"}))
    return "exits"


async def test_a_start_that_fails_leaves_a_dead_kernel_with_its_reason(http: httpx.Client, gated: GatedProvisioners,
                                                                       served: Served) -> None:
    kernel_id = start_held(http, gated, name=exiting_spec())
    client = await Client.open(served.ws_url, kernel_id)
    try:
        assert (await client.recv()).content == {"execution_state": "starting"}
        gated.gate.set()
        assert "exited with code 3" in await told_dead_and_closed(client)
    finally:
        await client.close()
    model = http.get(f"/api/kernels/{kernel_id}").json()
    assert model["execution_state"] == "dead" and "exited with code 3" in model["reason"]
    with pytest.raises(InvalidStatus) as refused:  # a dead kernel is not joined
        await Client.open(served.ws_url, kernel_id)
    assert refused.value.response.status_code == 500
    interrupted = http.post(f"/api/kernels/{kernel_id}/interrupt")
    assert interrupted.status_code == 500 and "dead" in interrupted.json()["message"]
    assert http.delete(f"/api/kernels/{kernel_id}").status_code == 204
    assert http.get(f"/api/kernels/{kernel_id}").status_code == 404


async def test_a_failed_start_is_over_once_the_kernel_is_dead_not_once_it_is_cleaned_up(
        http: httpx.Client, gated: GatedProvisioners, served: Served) -> None:
    # Its clients hear "dead" as soon as it is: what they do next must not meet a kernel that
    # still counts as starting while its cleanup runs (held here at the cleanup gate).
    gated.cleanup_gate.clear()
    kernel_id = start_held(http, gated, name=exiting_spec())
    gated.gate.set()
    wait_until(lambda: state(http, kernel_id), "the start to fail", check=lambda s: s == "dead")
    with pytest.raises(InvalidStatus) as refused:  # not joined as a starting kernel
        await Client.open(served.ws_url, kernel_id)
    assert refused.value.response.status_code == 500
    interrupted = http.post(f"/api/kernels/{kernel_id}/interrupt")  # not held until the cleanup is over
    assert interrupted.status_code == 500 and "dead" in interrupted.json()["message"]
    gated.cleanup_gate.set()
    assert http.delete(f"/api/kernels/{kernel_id}").status_code == 204


def test_interrupt_and_restart_of_a_starting_kernel_wait_for_its_start(http: httpx.Client,
                                                                       gated: GatedProvisioners) -> None:
    kernel_id = start_held(http, gated)
    with ThreadPoolExecutor(2) as pool:
        interrupt = pool.submit(http.post, f"/api/kernels/{kernel_id}/interrupt")
        restart = pool.submit(http.post, f"/api/kernels/{kernel_id}/restart")
        assert state(http, kernel_id) == "starting"
        gated.gate.set()
        assert interrupt.result(90).status_code == 204
        restarted = restart.result(90)
    assert restarted.status_code == 200, restarted.text
    assert restarted.json()["execution_state"] != "starting"
    assert http.delete(f"/api/kernels/{kernel_id}").status_code == 204


def test_a_session_is_made_while_its_kernel_starts(http: httpx.Client, gated: GatedProvisioners) -> None:
    created = http.post("/api/sessions", json={"path": "slow.ipynb", "type": "notebook", "kernel": {"name": "python3"}})
    assert created.status_code == 201, created.text
    session = created.json()
    assert session["kernel"]["execution_state"] == "starting"
    assert gated.arrived.wait(60)
    listed = http.get("/api/sessions").json()
    assert [(s["id"], s["kernel"]["execution_state"]) for s in listed] == [(session["id"], "starting")]
    again = http.post("/api/sessions", json={"path": "slow.ipynb", "type": "notebook", "kernel": {"name": "python3"}})
    assert again.json()["id"] == session["id"]  # the same notebook's session, not a second kernel
    gated.gate.set()
    wait_until(lambda: http.get(f"/api/sessions/{session['id']}").json()["kernel"]["execution_state"],
               "the session's kernel to be started", check=lambda s: s == "idle", timeout=60)
    assert http.delete(f"/api/sessions/{session['id']}").status_code == 204
    assert http.get(f"/api/kernels/{session['kernel']['id']}").status_code == 404


@pytest.mark.parametrize(("setting", "slow_start", "expected"), [(True, False, "starting"), (False, True, "idle")])
def test_the_setting_overrides_what_the_provisioner_says(tmp_path: Path, setting: bool, slow_start: bool,
                                                         expected: str) -> None:
    gated = GatedProvisioners()
    gated.slow_start = slow_start
    with serve_isolated(tmp_path, plugins=[gated], settings={**FAST, "pending_kernels": setting}) as running, \
            running.client(timeout=90) as http:
        created = http.post("/api/kernels", json={})
        assert created.status_code == 201 and created.json()["execution_state"] == expected
        kernel_id = created.json()["id"]
        wait_until(lambda: state(http, kernel_id), "the kernel to start", check=lambda s: s == "idle", timeout=60)
        assert http.delete(f"/api/kernels/{kernel_id}").status_code == 204


async def test_the_culler_skips_a_starting_kernel(tmp_path: Path) -> None:
    gated = GatedProvisioners()
    gated.gate.clear()
    with isolated(tmp_path):
        (tmp_path / "root").mkdir()
        app = create_app(str(tmp_path / "root"), token="t", extensions=[], config_files=False, plugins=[gated],
                         settings={**FAST, "cull_idle_timeout": 0.001})
        server = app.server
        await server.start()
        try:
            kernel = await server.kernels.start_kernel(kernel_id=str(uuid.uuid4()), pending=True)
            assert await asyncio.to_thread(gated.arrived.wait, 60)
            assert not await server.kernels.cull_if_idle(kernel)  # idle far longer than 1 ms, but starting
            assert kernel.id in server.kernels
            gated.gate.set()
            await server.kernels.ready(kernel)
            assert kernel.execution_state == "idle"
            assert await server.kernels.cull_if_idle(kernel)
            assert kernel.id not in server.kernels
        finally:
            gated.gate.set()
            await server.stop()
