"""A hub that misbehaves, played by a tiny real app: answers that are not JSON (a 502 naming the
hub, never a 500)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from carme import create_app
from tests.serving import serve


class TinyHub:
    """The hub's API at ``/hub/api``: its version, a ``/user`` that answers an HTML page, and an
    activity URL that keeps what it is sent."""

    def __init__(self) -> None:
        self.reports: list[dict[str, object]] = []
        self.app = Starlette(routes=[
            Route("/hub/api", self.version), Route("/hub/api/user", self.login_page),
            Route("/hub/api/users/alice/activity", self.activity, methods=["POST"])])

    async def version(self, request: Request) -> Response:
        return JSONResponse({"version": "5.2.1"}, headers={"X-JupyterHub-Version": "5.2.1"})

    async def login_page(self, request: Request) -> Response:
        return HTMLResponse("<html><body>Sign in to continue</body></html>")

    async def activity(self, request: Request) -> Response:
        self.reports.append(await request.json())
        return Response(status_code=204)


def spawned(hub_url: str, **more: str) -> dict[str, str]:
    return {"JUPYTERHUB_API_URL": hub_url + "/hub/api", "JUPYTERHUB_USER": "alice",
            "JUPYTERHUB_ACTIVITY_URL": hub_url + "/hub/api/users/alice/activity", **more}


@pytest.fixture
def server_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "server-token")


@pytest.fixture
def tiny_hub() -> Iterator[tuple[TinyHub, str]]:
    hub = TinyHub()
    with serve(hub.app) as running:
        yield hub, running.url


@pytest.mark.usefixtures("server_token")
def test_a_hub_answer_that_is_not_json_is_a_502_naming_the_hub(root: Path, tiny_hub: tuple[TinyHub, str]) -> None:
    _, hub_url = tiny_hub
    app = create_app(str(root), environ=spawned(hub_url), config_files=False, extensions=["hub"])
    with serve(app) as served:
        response = httpx.get(served.url + "/user/alice/api/contents", headers={"Authorization": "token visitor"})
    assert response.status_code == 502, response.text
    body = response.json()
    assert f"{hub_url}/hub/api" in body["message"] and "GET /user" in body["message"], body
    assert "not JSON (text/html" in body["message"], body
    assert body["reason"] == "Bad Gateway"
