"""The gateway going away: kernels culled there, the gateway crashing and coming back, the
gateway down. carme reports dead kernels, answers 503 with the gateway's words, never hangs.

A gateway of this module's own: these tests kill it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from carme import create_app
from tests.kernels.wsclient import Client, Msg
from tests.polling import wait_until
from tests.serving import TOKEN, Served, serve, serve_isolated

from .conftest import gateway_settings
from .enterprise_gateway import EnterpriseGateway, running_gateway

# The first test to use the gateway may install it (uv, into bench/.anchor-gateway-venv) on a fresh machine.
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnterpriseGateway]:
    with running_gateway(tmp_path_factory.mktemp("enterprise-gateway-outage")) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def gserved(gateway: EnterpriseGateway, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    # Asks the gateway every half second whether it still knows each kernel.
    settings = gateway_settings(gateway, **{"gateway.check_interval": 0.5})
    with serve_isolated(tmp_path_factory.mktemp("carme-outage"), extensions=["gateway"], settings=settings) as running:
        yield running



def start(http: httpx.Client) -> str:
    response = http.post("/api/kernels", json={"name": "python3"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def is_dead(msg: Msg) -> bool:
    return msg.msg_type == "status" and msg.content.get("execution_state") == "dead"


async def dies_for_its_client(gserved: Served, http: httpx.Client, kernel_id: str, client: Client) -> None:
    """The client hears ``dead`` and carme forgets the kernel."""
    await client.wait_for(is_dead, timeout=60)
    wait_until(lambda: http.get(f"/api/kernels/{kernel_id}").status_code == 404, "carme to forget the dead kernel")


async def test_a_kernel_culled_on_the_gateway_is_reported_dead(gserved: Served, http: httpx.Client,
                                                               gateway: EnterpriseGateway) -> None:
    kernel_id = start(http)
    client = await Client.open(gserved.ws_url, kernel_id)
    try:
        await client.run("x = 1")
        assert httpx.delete(f"{gateway.url}/api/kernels/{kernel_id}").status_code == 204  # its culler's doing
        await dies_for_its_client(gserved, http, kernel_id, client)
    finally:
        await client.close()


async def test_the_gateway_crashes_and_comes_back(gserved: Served, http: httpx.Client,
                                                  gateway: EnterpriseGateway) -> None:
    kernel_id = start(http)
    client = await Client.open(gserved.ws_url, kernel_id)
    try:
        await client.run("x = 1")
        gateway.kill()
        # While it is down: a clear 503 naming the gateway, at once, for specs and starts alike.
        for response in (http.post("/api/kernels", json={"name": "python3"}), http.get("/api/kernelspecs"),
                         http.post("/api/sessions", json={"path": "a.ipynb", "type": "notebook",
                                                          "kernel": {"name": "python3"}})):
            assert response.status_code == 503, response.text
            assert gateway.url in response.json()["message"], response.text
        gateway.start()  # it knows none of its old kernels
        await dies_for_its_client(gserved, http, kernel_id, client)
    finally:
        await client.close()
    # Back in service for new kernels.
    again = start(http)
    client = await Client.open(gserved.ws_url, again)
    try:
        assert (await client.run("print(6 * 7)")).strip() == "42"
    finally:
        await client.close()
    assert http.delete(f"/api/kernels/{again}").status_code == 204


def test_carme_culls_idle_gateway_kernels(serve_app: Callable[..., Served], gateway: EnterpriseGateway) -> None:
    served = serve_app(extensions=["gateway"], settings=gateway_settings(
        gateway, cull_idle_timeout=0.5, cull_interval=0.2))
    with served.client(timeout=120) as http:
        kernel_id = start(http)
        wait_until(lambda: http.get(f"/api/kernels/{kernel_id}").status_code == 404, "carme to cull the idle kernel")
    # carme forgets it first, then shuts it down on the gateway.
    wait_until(lambda: gateway.kernel(kernel_id).status_code == 404, "the culled kernel to leave the gateway")


def test_stopping_carme_shuts_its_kernels_down_on_the_gateway(tmp_path: Path, gateway: EnterpriseGateway) -> None:
    (tmp_path / "root").mkdir()
    app = create_app(str(tmp_path / "root"), token=TOKEN, extensions=["gateway"], config_files=False,
                     settings=gateway_settings(gateway))
    with serve(app) as running, running.client(timeout=120) as http:
        kernel_ids = [start(http), start(http)]
        assert all(gateway.kernel(k).status_code == 200 for k in kernel_ids)
    assert [gateway.kernel(k).status_code for k in kernel_ids] == [404, 404]
