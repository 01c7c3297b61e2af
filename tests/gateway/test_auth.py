"""A gateway behind TLS that wants a token (EG_CERTFILE, EG_AUTH_TOKEN): carme trusts the
configured CA and sends the token on REST and on the kernel websocket (wss); a wrong token is
refused with the gateway's status, an untrusted certificate with 503, and a user the gateway
refuses (root) gets the gateway's own words."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.kernels.wsclient import Client
from tests.serving import Served

from .conftest import gateway_settings
from .enterprise_gateway import EnterpriseGateway, running_gateway, self_signed_certificate

# The first test to use the gateway may install it (uv, into bench/.anchor-gateway-venv) on a fresh machine.
pytestmark = pytest.mark.timeout(300)

SECRET = "gateway-secret"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnterpriseGateway]:
    home = tmp_path_factory.mktemp("enterprise-gateway-auth")
    cert, key = self_signed_certificate(home)
    env = {"EG_AUTH_TOKEN": SECRET, "EG_CERTFILE": str(cert), "EG_KEYFILE": str(key)}
    with running_gateway(home, env) as gateway:
        yield gateway


def trusted(gateway: EnterpriseGateway, **more: Any) -> dict[str, Any]:
    """carme's settings for the module's gateway, its certificate trusted."""
    return gateway_settings(gateway, **{"gateway.ca_certs": str(gateway.certificate), **more})


async def test_the_token_goes_with_every_request_and_websocket(serve_app: Callable[..., Served],
                                                               gateway: EnterpriseGateway) -> None:
    assert gateway.url.startswith("https://")
    served = serve_app(extensions=["gateway"], settings=trusted(gateway, **{"gateway.auth_token": SECRET}))
    with served.client(timeout=120) as http:
        assert "python3" in http.get("/api/kernelspecs").json()["kernelspecs"]
        response = http.post("/api/kernels", json={"name": "python3"})
        assert response.status_code == 201, response.text
        client = await Client.open(served.ws_url, response.json()["id"])
        try:
            assert (await client.run("print(1 + 1)")).strip() == "2"
        finally:
            await client.close()


def test_refusals_keep_the_gateways_status_and_words(serve_app: Callable[..., Served],
                                                     gateway: EnterpriseGateway) -> None:
    wrong = serve_app(extensions=["gateway"], settings=trusted(gateway, **{"gateway.auth_token": "nope"}))
    with wrong.client() as http:
        response = http.get("/api/kernelspecs")
        assert response.status_code == 401 and "Enterprise Gateway answered 401" in response.json()["message"]
    as_root = serve_app(extensions=["gateway"], settings=trusted(
        gateway, **{"gateway.auth_token": SECRET, "gateway.username": "root"}))
    with as_root.client(timeout=120) as http:
        response = http.post("/api/kernels", json={"name": "python3"})
        assert response.status_code == 403, response.text
        message = response.json()["message"]  # EG's words: refused for its spec, or for the start itself
        assert "Enterprise Gateway answered 403" in message and "root" in message and "not authorized" in message
        assert http.get("/api/kernels").json() == []


def test_the_certificate_is_checked_unless_told_not_to(serve_app: Callable[..., Served],
                                                       gateway: EnterpriseGateway) -> None:
    untrusting = serve_app(extensions=["gateway"], settings=gateway_settings(gateway, **{"gateway.auth_token": SECRET}))
    with untrusting.client() as http:
        response = http.get("/api/kernelspecs")
        assert response.status_code == 503 and gateway.url in response.json()["message"], response.text
    unchecked = serve_app(extensions=["gateway"], settings=gateway_settings(
        gateway, **{"gateway.auth_token": SECRET, "gateway.validate_cert": False}))
    with unchecked.client() as http:
        assert "python3" in http.get("/api/kernelspecs").json()["kernelspecs"]
