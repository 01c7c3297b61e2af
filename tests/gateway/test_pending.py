"""Slow starts on a real Enterprise Gateway, with carme's default (pending kernels for the
gateway's provisioner): the start is answered at once, clients see ``starting`` then ``idle``, a
DELETE during the start leaves nothing on the gateway, a refused launch is reported.

Two ways a start is slow, both held until the test opens a gate file (not by sleeping):

- ``held``: the gateway's launch itself waits, as for a pod being scheduled (a process proxy of the
  tests, ``on_the_gateway/held_proxy.py``, on the gateway's PYTHONPATH): carme's POST to the gateway is pending;
- ``slow``: the gateway launches at once, but the kernel's argv waits before exec'ing ipykernel:
  carme waits for kernel_info.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.kernels.test_pending import is_idle_after, is_reply_to, told_dead_and_closed
from tests.kernels.wsclient import Client
from tests.polling import wait_until
from tests.serving import Served, serve_isolated

from .conftest import gateway_settings
from .enterprise_gateway import EnterpriseGateway, running_gateway

pytestmark = pytest.mark.timeout(300)

SLOW_ARGV = """
import os, sys, time
gate = os.path.join(sys.argv[1], os.environ["KERNEL_ID"] + ".argv")
while not os.path.exists(gate):
    time.sleep(0.05)
os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", "-f", sys.argv[2]])
"""


class Gates:
    """The gate files of the held kernelspecs."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def open(self, spec: str, kernel_id: str, word: str = "go") -> None:
        name = kernel_id if spec == "held" else f"{kernel_id}.argv"
        (self.folder / name).write_text(word)

    def launched(self, kernel_id: str) -> bool:
        return (self.folder / f"{kernel_id}.launched").exists()

    def arrived(self, kernel_id: str) -> bool:
        return (self.folder / f"{kernel_id}.arrived").exists()


def install_specs(data_dir: Path, python: Path, gates: Path) -> None:
    ipykernel = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    specs: dict[str, dict[str, Any]] = {
        "held": {"argv": ipykernel, "display_name": "Held launch", "language": "python",
                 "metadata": {"process_proxy": {"class_name": "held_proxy.HeldProcessProxy",
                                                "config": {"gates": str(gates)}}}},
        "slow": {"argv": [str(python), "-c", SLOW_ARGV, str(gates), "{connection_file}"],
                 "display_name": "Slow kernel", "language": "python"},
    }
    for name, spec in specs.items():
        folder = data_dir / "kernels" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "kernel.json").write_text(json.dumps(spec))


@pytest.fixture(scope="module")
def gates(tmp_path_factory: pytest.TempPathFactory) -> Gates:
    return Gates(tmp_path_factory.mktemp("gates"))


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, gates: Gates) -> Iterator[EnterpriseGateway]:
    home = tmp_path_factory.mktemp("enterprise-gateway-pending")
    # only its own folder on the gateway's path (tests/gateway has a module named enterprise_gateway)
    held_proxy = str(Path(__file__).parent / "on_the_gateway")
    with running_gateway(home, {"PYTHONPATH": held_proxy}) as gateway:
        install_specs(home / "data", gateway.python, gates.folder)
        yield gateway


@pytest.fixture(scope="module")
def gserved(gateway: EnterpriseGateway, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    settings = gateway_settings(gateway, pending_kernels=None)  # the default: the provisioner says "slow"
    with serve_isolated(tmp_path_factory.mktemp("carme-pending"), extensions=["gateway"], settings=settings) as running:
        yield running



def start(http: httpx.Client, spec: str) -> str:
    created = http.post("/api/kernels", json={"name": spec})
    assert created.status_code == 201, created.text
    assert created.json()["execution_state"] == "starting"
    return str(created.json()["id"])


def state(http: httpx.Client, kernel_id: str) -> str:
    return str(http.get(f"/api/kernels/{kernel_id}").json()["execution_state"])


def on_gateway(gateway: EnterpriseGateway, kernel_id: str) -> bool:
    """Whether the gateway knows the kernel (it lists none: EG_LIST_KERNELS is off)."""
    return gateway.kernel(kernel_id).status_code == 200


@pytest.mark.parametrize("spec", ["held", "slow"])
async def test_a_client_sees_starting_then_idle(gserved: Served, http: httpx.Client, gateway: EnterpriseGateway,
                                                gates: Gates, spec: str) -> None:
    kernel_id = start(http, spec)
    assert state(http, kernel_id) == "starting"
    assert [k["execution_state"] for k in http.get("/api/kernels").json() if k["id"] == kernel_id] == ["starting"]
    client = await Client.open(gserved.ws_url, kernel_id)
    try:
        first = await client.recv()
        assert (first.msg_type, first.content) == ("status", {"execution_state": "starting"})
        early = await client.send("shell", "kernel_info_request", {})
        assert state(http, kernel_id) == "starting"
        gates.open(spec, kernel_id)
        reply = await client.wait_for(is_reply_to(early), timeout=90)
        assert reply.msg_type == "kernel_info_reply"
        await client.wait_for(is_idle_after(early))  # the kernel's own idle: carme's state is idle by then
        assert state(http, kernel_id) == "idle"
        assert await client.run("print(1 + 1)") == "2\n"
    finally:
        await client.close()
    assert gateway.kernel(kernel_id).status_code == 200  # it runs there, under carme's id
    assert http.delete(f"/api/kernels/{kernel_id}").status_code == 204
    assert gateway.kernel(kernel_id).status_code == 404


@pytest.mark.parametrize("spec", ["held", "slow"])
async def test_delete_during_the_start_leaves_nothing_on_the_gateway(
        gserved: Served, http: httpx.Client, gateway: EnterpriseGateway, gates: Gates, spec: str) -> None:
    kernel_id = start(http, spec)
    if spec == "held":  # the gateway's launch is waiting: carme's POST to it is pending
        wait_until(lambda: gates.arrived(kernel_id), "the gateway to begin the launch", timeout=60)
        assert not on_gateway(gateway, kernel_id)
    else:  # launched there; carme waits for the kernel to answer
        wait_until(lambda: gateway.kernel(kernel_id).status_code == 200, "the gateway to launch it", timeout=60)
    client = await Client.open(gserved.ws_url, kernel_id)
    try:
        assert (await client.recv()).content == {"execution_state": "starting"}
        assert http.delete(f"/api/kernels/{kernel_id}").status_code == 204
        assert http.get(f"/api/kernels/{kernel_id}").status_code == 404
        assert "start cancelled" in await told_dead_and_closed(client)
    finally:
        await client.close()
    if spec == "held":
        gates.open(spec, kernel_id)  # the launch ends on the gateway; carme shuts it down there at once
        wait_until(lambda: gates.launched(kernel_id), "the gateway to finish the launch", timeout=60)
    wait_until(lambda: not on_gateway(gateway, kernel_id), "the kernel to be gone from the gateway", timeout=60)
    if spec == "slow":
        gates.open(spec, kernel_id)  # nothing is waiting on it any more
    assert kernel_id not in {k["id"] for k in http.get("/api/kernels").json()}


async def test_a_launch_the_gateway_refuses_is_reported(gserved: Served, http: httpx.Client,
                                                        gateway: EnterpriseGateway, gates: Gates) -> None:
    kernel_id = start(http, "held")
    client = await Client.open(gserved.ws_url, kernel_id)
    try:
        assert (await client.recv()).content == {"execution_state": "starting"}
        gates.open("held", kernel_id, "fail")
        assert "could not start" in await told_dead_and_closed(client)
    finally:
        await client.close()
    model = http.get(f"/api/kernels/{kernel_id}").json()
    assert model["execution_state"] == "dead"
    assert "the gateway could not start a 'held' kernel" in model["reason"]
    assert "500" in model["reason"]  # the gateway's status and words are kept
    assert http.delete(f"/api/kernels/{kernel_id}").status_code == 204
    assert not on_gateway(gateway, kernel_id)


def test_the_wait_is_bounded_by_the_gateways_timeout(tmp_path: Path, gateway: EnterpriseGateway, gates: Gates) -> None:
    # request_timeout is at least launch_timeout + pad: 2 s here, far less than the held launch
    settings = gateway_settings(gateway, pending_kernels=None, **{
        "gateway.launch_timeout": 1.0, "gateway.launch_timeout_pad": 1.0, "gateway.request_timeout": 2.0})
    with serve_isolated(tmp_path, extensions=["gateway"], settings=settings) as running, \
            running.client(timeout=120) as http:
        kernel_id = start(http, "held")
        try:
            model = wait_until(lambda: http.get(f"/api/kernels/{kernel_id}").json(), "the start to give up",
                               check=lambda m: m["execution_state"] == "dead", timeout=90)
            assert "did not answer within 2 s" in model["reason"]
        finally:
            gates.open("held", kernel_id, "fail")  # let the gateway's launch end
        assert http.delete(f"/api/kernels/{kernel_id}").status_code == 204
