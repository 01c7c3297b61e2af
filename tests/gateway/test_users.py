"""The user who starts a kernel (REST or a session) is the user it runs as on the gateway
(KERNEL_USERNAME), unless the settings name one; an anonymous token client is nobody's name."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from carme.auth import AuthResult, User
from carme.hooks import hookimpl

from tests.kernels.wsclient import Client
from tests.serving import Served, serve_isolated

from .conftest import gateway_settings
from .enterprise_gateway import USER, EnterpriseGateway

pytestmark = pytest.mark.timeout(300)


class SignedIn:
    """Identifies requests by an X-Test-User header (as a hub or an embedding product would), and
    records which user each kernel start hands the provisioner hook."""

    def __init__(self) -> None:
        self.provisioned_for: list[str | None] = []

    @hookimpl
    def carme_user_from_connection(self, server: Any, connection: Any) -> AuthResult | None:
        name = connection.headers.get("x-test-user")
        return AuthResult(User(name), by_token=True) if name else None

    @hookimpl(tryfirst=True)  # asked before the gateway's, which answers
    def carme_kernel_provisioner(self, server: Any, spec: Any, user: User | None) -> None:
        self.provisioned_for.append(user.username if user else None)


@pytest.fixture(scope="module")
def signed_in() -> SignedIn:
    return SignedIn()


@pytest.fixture(scope="module")
def userserved(enterprise_gateway: EnterpriseGateway, signed_in: SignedIn,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """carme on the gateway with no gateway.username: kernels run as whoever starts them, else as
    carme's own user, given by its environment as a spawner gives it (CI runs as root, whom EG refuses)."""
    settings = gateway_settings(enterprise_gateway)
    del settings["gateway.username"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KERNEL_USERNAME", USER)
        with serve_isolated(tmp_path_factory.mktemp("carme-gateway-users"), extensions=["gateway"],
                            plugins=[signed_in], settings=settings) as running:
            yield running


async def kernel_username(served: Served, kernel_id: str) -> str:
    client = await Client.open(served.ws_url, kernel_id)
    try:
        return (await client.run("import os; print(os.environ['KERNEL_USERNAME'])")).strip()
    finally:
        await client.close()


async def test_a_kernel_started_over_rest_runs_as_the_user_who_started_it(
        userserved: Served, signed_in: SignedIn) -> None:
    async with httpx.AsyncClient(base_url=userserved.url, timeout=120) as http:
        started = await http.post("/api/kernels", json={"name": "python3"}, headers={"X-Test-User": "carme-alice"})
        assert started.status_code == 201, started.text
        kernel_id = started.json()["id"]
        try:
            assert signed_in.provisioned_for[-1] == "carme-alice"
            assert await kernel_username(userserved, kernel_id) == "carme-alice"
        finally:
            await http.delete(f"/api/kernels/{kernel_id}", headers={"X-Test-User": "carme-alice"})


async def test_a_session_starts_its_kernel_as_its_user(userserved: Served, signed_in: SignedIn) -> None:
    async with httpx.AsyncClient(base_url=userserved.url, timeout=120, headers={"X-Test-User": "carme-bob"}) as http:
        made = await http.post("/api/sessions", json={"path": "b.ipynb", "type": "notebook",
                                                      "kernel": {"name": "python3"}})
        assert made.status_code == 201, made.text
        session = made.json()
        try:
            assert signed_in.provisioned_for[-1] == "carme-bob"
            assert await kernel_username(userserved, session["kernel"]["id"]) == "carme-bob"
        finally:
            await http.delete(f"/api/sessions/{session['id']}")


async def test_the_anonymous_token_user_is_not_passed_on(userserved: Served, signed_in: SignedIn) -> None:
    with userserved.client(timeout=120) as http:
        stand_in = http.get("/api/me").json()["identity"]["username"]  # the token's random name
        started = http.post("/api/kernels", json={"name": "python3"})
        assert started.status_code == 201, started.text
        kernel_id = started.json()["id"]
        try:
            assert signed_in.provisioned_for[-1] is None
            assert await kernel_username(userserved, kernel_id) == USER != stand_in  # carme's own user
        finally:
            http.delete(f"/api/kernels/{kernel_id}")

