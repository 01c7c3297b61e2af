"""carme with its kernels on a real Enterprise Gateway: specs, lifecycle, the websocket relay
(both protocols, several clients, replay), widgets with binary buffers, sessions."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.kernels.wsclient import Client, Msg, stdout
from tests.serving import Served
from tests.widgets.test_live import binary_round_trip

from .conftest import TAG
from .enterprise_gateway import USER, EnterpriseGateway

# The first test to use the gateway may install it (uv, into bench/.anchor-gateway-venv) on a fresh machine.
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def http(gserved: Served) -> Iterator[httpx.Client]:
    with gserved.client(timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def kernel_id(http: httpx.Client, enterprise_gateway: EnterpriseGateway) -> Iterator[str]:
    """One kernel on the gateway for the module's tests (each test works on its own names)."""
    response = http.post("/api/kernels", json={"name": "python3"})
    assert response.status_code == 201, response.text
    kernel_id = response.json()["id"]
    yield kernel_id
    http.delete(f"/api/kernels/{kernel_id}")


def is_reply_to(msg_id: str) -> Callable[[Msg], bool]:
    return lambda m: m.channel == "shell" and m.parent_id == msg_id


def test_kernelspecs_are_the_gateways(http: httpx.Client, enterprise_gateway: EnterpriseGateway) -> None:
    ours = http.get("/api/kernelspecs").json()
    theirs = httpx.get(f"{enterprise_gateway.url}/api/kernelspecs").json()
    assert set(ours["kernelspecs"]) == set(theirs["kernelspecs"]) and ours["default"] == theirs["default"]
    spec = ours["kernelspecs"]["python3"]
    assert spec["spec"]["display_name"] == theirs["kernelspecs"]["python3"]["spec"]["display_name"]
    logo = http.get(spec["resources"]["logo-64x64"])  # served by carme, fetched from the gateway
    assert logo.status_code == 200 and logo.content == httpx.get(
        f"{enterprise_gateway.url}/kernelspecs/python3/logo-64x64.png").content
    assert http.get("/api/kernelspecs/python3").json()["name"] == "python3"
    missing = http.get("/api/kernelspecs/no-such-kernel")
    assert missing.status_code == 404 and missing.json()["message"]
    refused = http.post("/api/kernels", json={"name": "no-such-kernel"})
    assert refused.status_code == 400 and "no-such-kernel" in refused.json()["message"]


async def test_the_kernel_runs_on_the_gateway_with_the_users_environment(
        gserved: Served, http: httpx.Client, kernel_id: str, enterprise_gateway: EnterpriseGateway) -> None:
    assert enterprise_gateway.kernel(kernel_id).status_code == 200  # same id on both sides
    assert http.get(f"/api/kernels/{kernel_id}").json()["execution_state"] == "idle"
    client = await Client.open(gserved.ws_url, kernel_id)
    try:
        out = await client.run("import os\nprint(os.environ['KERNEL_USERNAME'], os.environ['KERNEL_TEST_TAG'],"
                               " os.environ['KERNEL_GATEWAY'])")
        assert out.split() == [USER, TAG, "1"]
        iopub, reply = await client.execute("1 + 1")
        assert reply.content["status"] == "ok"
        assert [m.content["data"]["text/plain"] for m in iopub if m.msg_type == "execute_result"] == ["2"]
    finally:
        await client.close()
    assert http.get(f"/api/kernels/{kernel_id}").json()["connections"] == 0


@pytest.mark.parametrize("v1", [True, False], ids=["v1", "legacy"])
async def test_widgets_and_binary_buffers(gserved: Served, http: httpx.Client, kernel_id: str, v1: bool) -> None:
    """ipywidgets in the remote kernel: buffers both ways, the widgets extension's server-held state."""
    frontend = await Client.open(gserved.ws_url, kernel_id, v1=v1)
    try:
        await binary_round_trip(http, kernel_id, frontend)
    finally:
        await frontend.close()


async def test_two_clients_see_output_and_only_the_asker_gets_replies(gserved: Served, kernel_id: str) -> None:
    asker = await Client.open(gserved.ws_url, kernel_id)
    watcher = await Client.open(gserved.ws_url, kernel_id, v1=False)
    try:
        msg_id = await asker.send("shell", "execute_request", {"code": "print('for both')", "silent": False})
        iopub, reply = await asker.collect(msg_id)
        assert stdout(iopub) == "for both\n" and reply.content["status"] == "ok"
        seen = await watcher.until(lambda m: m.parent_id == msg_id and m.msg_type == "status"
                                   and m.content["execution_state"] == "idle")
        assert stdout([m for m in seen if m.parent_id == msg_id]) == "for both\n"
        # The watcher's own request is answered to it, after which the asker's reply would have come.
        mine = await watcher.send("shell", "kernel_info_request", {})
        await watcher.wait_for(is_reply_to(mine))
        assert not [m for m in watcher.received if m.channel == "shell" and m.parent_id == msg_id]
    finally:
        await asker.close()
        await watcher.close()


async def test_input_goes_to_the_asking_client_only(gserved: Served, kernel_id: str) -> None:
    asker = await Client.open(gserved.ws_url, kernel_id, v1=False)
    watcher = await Client.open(gserved.ws_url, kernel_id)
    try:
        msg_id = await asker.send("shell", "execute_request", {
            "code": "answer = input('name? ')\nprint('hello', answer)", "silent": False, "store_history": False,
            "user_expressions": {}, "allow_stdin": True})
        asked = await asker.wait_for(lambda m: m.channel == "stdin")
        assert asked.msg_type == "input_request" and asked.content["prompt"] == "name? "
        await asker.send("stdin", "input_reply", {"value": "gateway"})
        iopub, reply = await asker.collect(msg_id)
        assert reply.content["status"] == "ok" and "hello gateway\n" in stdout(iopub)
        await watcher.until(lambda m: m.parent_id == msg_id and m.msg_type == "status"
                            and m.content["execution_state"] == "idle")
        assert not [m for m in watcher.received if m.channel in ("stdin", "shell")]
    finally:
        await asker.close()
        await watcher.close()


async def test_a_client_that_comes_back_gets_what_it_missed(gserved: Served, kernel_id: str) -> None:
    away = await Client.open(gserved.ws_url, kernel_id)
    other = await Client.open(gserved.ws_url, kernel_id)  # before: a new session discards those away
    session = away.session_id
    await away.close()
    try:
        msg_id = await other.send("shell", "execute_request", {"code": "print('while you were away')", "silent": False})
        await other.collect(msg_id)
    finally:
        await other.close()
    back = await Client.open(gserved.ws_url, kernel_id, session_id=session)
    try:
        missed = await back.until(lambda m: m.parent_id == msg_id and m.msg_type == "status"
                                  and m.content["execution_state"] == "idle")
        assert stdout([m for m in missed if m.parent_id == msg_id]) == "while you were away\n"
    finally:
        await back.close()


async def test_interrupt(gserved: Served, http: httpx.Client, kernel_id: str) -> None:
    client = await Client.open(gserved.ws_url, kernel_id)
    try:
        # stop_on_error off: the kernel would abort the next tests' requests for a moment after the error.
        msg_id = await client.send("shell", "execute_request", {"code": "import time\nprint('sleeping', flush=True)\n"
                                                               "time.sleep(120)", "silent": False,
                                                               "stop_on_error": False})
        await client.wait_for(lambda m: m.parent_id == msg_id and m.msg_type == "stream")
        assert http.post(f"/api/kernels/{kernel_id}/interrupt").status_code == 204
        reply = await client.wait_for(is_reply_to(msg_id))
        assert reply.content["status"] == "error" and reply.content["ename"] == "KeyboardInterrupt"
    finally:
        await client.close()


async def test_restart_keeps_the_kernel_and_its_clients(gserved: Served, http: httpx.Client, kernel_id: str,
                                                        enterprise_gateway: EnterpriseGateway) -> None:
    client = await Client.open(gserved.ws_url, kernel_id)
    try:
        await client.run("before_restart = 1")
        response = await asyncio.to_thread(http.post, f"/api/kernels/{kernel_id}/restart")
        assert response.status_code == 200, response.text
        assert response.json()["execution_state"] == "idle"
        # The same websocket goes on, to a fresh kernel with the same id on the gateway.
        assert (await client.run("print('before_restart' in dir())")).strip() == "False"
        assert enterprise_gateway.kernel(kernel_id).status_code == 200
    finally:
        await client.close()


def test_shutdown_and_sessions(http: httpx.Client, enterprise_gateway: EnterpriseGateway) -> None:
    response = http.post("/api/sessions", json={"path": "remote.ipynb", "type": "notebook",
                                                "kernel": {"name": "python3"}})
    assert response.status_code == 201, response.text
    session = response.json()
    kernel_id = session["kernel"]["id"]
    assert enterprise_gateway.kernel(kernel_id).status_code == 200
    assert http.delete(f"/api/sessions/{session['id']}").status_code == 204
    assert http.get(f"/api/kernels/{kernel_id}").status_code == 404
    assert enterprise_gateway.kernel(kernel_id).status_code == 404  # shut down there too
