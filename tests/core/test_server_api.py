"""/api, /api/status, /api/me, auth basics, through a real uvicorn."""

from __future__ import annotations

import httpx


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
