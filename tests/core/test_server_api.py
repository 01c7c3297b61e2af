"""/api, /api/status, /api/me, auth basics, through a real uvicorn."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
import websockets.sync.client as ws_client
from websockets.exceptions import InvalidStatus

from tests.serving import AUTH, Served


def test_api_version_is_public(anon: httpx.Client) -> None:
    response = anon.get("/api")
    assert response.status_code == 200
    assert response.json()["version"].startswith("2.")


def test_status_requires_auth(anon: httpx.Client) -> None:
    response = anon.get("/api/status")
    assert response.status_code == 403
    assert response.json() == {"message": "Forbidden", "reason": None}


def test_status_shape(client: httpx.Client) -> None:
    body = client.get("/api/status").json()
    assert sorted(body) == ["connections", "kernels", "last_activity", "started"]
    assert body["started"].endswith("Z")


def test_me_with_permissions(client: httpx.Client) -> None:
    body = client.get("/api/me", params={"permissions": '{"contents": ["read", "write"]}'}).json()
    assert body["permissions"] == {"contents": ["read", "write"]}
    assert set(body["identity"]) == {"username", "name", "display_name", "initials", "avatar_url", "color"}


def test_me_rejects_malformed_permissions(client: httpx.Client) -> None:
    response = client.get("/api/me", params={"permissions": "{not json"})
    assert response.status_code == 400
    assert "permissions" in response.json()["message"]


def test_websocket_to_a_path_nothing_serves_is_404(served: Served) -> None:
    # Starlette would close it before the upgrade, which a client reads as 403 (refused entry).
    with pytest.raises(InvalidStatus) as refused:
        ws_client.connect(served.ws_url + "/api/no-such-socket", additional_headers=AUTH)
    assert refused.value.response.status_code == 404
    assert orjson.loads(refused.value.response.body) == {"message": "Not Found: /api/no-such-socket",
                                                          "reason": "Not Found"}
    # Without credentials it is still refused entry first.
    with pytest.raises(InvalidStatus) as refused:
        ws_client.connect(served.ws_url + "/api/no-such-socket")
    assert refused.value.response.status_code == 403


def test_websocket_not_found_under_a_base_url(serve_app: Any) -> None:
    served = serve_app(base_url="/user/me/")
    for path in ("/user/me/api/no-such-socket", "/elsewhere"):
        with pytest.raises(InvalidStatus) as refused:
            ws_client.connect(served.ws_url + path, additional_headers=AUTH)
        assert refused.value.response.status_code == 404, path
