"""carme_permission through a real uvicorn: any False denies, exceptions deny, paths are
normalised, denials answer 403 JSON naming action and resource and are published on the bus;
/api/me reports the permissions held; contents models' ``writable`` is the user's."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets.sync.client as ws_client
from starlette.requests import HTTPConnection
from websockets.exceptions import InvalidStatus

from carme import create_app, hookimpl
from carme.auth import User
from carme.authorization import DENIED_SCHEMA
from tests.serving import Served, serve


class Users:
    """Who: the X-Test-User header."""

    name = "users"

    @hookimpl
    def carme_user_from_connection(self, server: Any, connection: HTTPConnection) -> User | None:
        name = connection.headers.get("x-test-user")
        return User(name) if name else None


class Rules:
    """Viewers only read; nobody but admin touches private/; async, as a product's may be."""

    name = "rules"

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, str, str | None]] = []

    @hookimpl
    async def carme_permission(self, server: Any, user: User, action: str, resource: str,
                               path: str | None) -> bool | None:
        self.asked.append((user.username, action, resource, path))
        if user.username == "viewer" and action != "read":
            return False
        if path is not None and (path == "private" or path.startswith("private/")) and user.username != "admin":
            return False
        return None


class Vetoes:
    """Says yes to everything but kernelspecs: a True elsewhere never outvotes a False."""

    name = "vetoes"

    @hookimpl
    def carme_permission(self, resource: str) -> bool:
        return resource != "kernelspecs"


class Broken:
    """Fails on events: authorization fails closed."""

    name = "broken"

    @hookimpl
    def carme_permission(self, resource: str) -> bool | None:
        if resource == "events":
            raise RuntimeError("policy store unreachable")
        return None


@pytest.fixture
def rules() -> Rules:
    return Rules()


@pytest.fixture
def served(root: Path, rules: Rules) -> Iterator[Served]:
    (root / "private").mkdir()
    (root / "private" / "secret.txt").write_text("secret")
    (root / "a.txt").write_text("a")
    app = create_app(str(root), extensions=[], config_files=False, plugins=[Users(), rules, Vetoes(), Broken()])
    with serve(app) as running:
        yield running


@pytest.fixture
def denials(served: Served) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    served.app.server.events.add_listener(lambda event: events.append(event)
                                          if event["schema_id"] == DENIED_SCHEMA else None)
    return events


@contextlib.contextmanager
def as_user(served: Served, username: str) -> Iterator[httpx.Client]:
    """A client identified by the plugin (an ambient identity: it echoes the _xsrf cookie)."""
    with httpx.Client(base_url=served.url, headers={"X-Test-User": username}, timeout=30) as client:
        client.headers["X-XSRFToken"] = client.get("/api/me").cookies["_xsrf"]
        yield client


def test_hook_carme_permission(served: Served, root: Path, rules: Rules, denials: list[dict[str, Any]]) -> None:
    with as_user(served, "viewer") as viewer, as_user(served, "editor") as editor:
        assert viewer.get("/api/contents/a.txt").status_code == 200
        refused = viewer.put("/api/contents/b.txt", json={"type": "file", "format": "text", "content": "b"})
        assert refused.status_code == 403
        body = refused.json()
        assert (body["action"], body["resource"], body["path"], body["reason"]) == ("write", "contents", "b.txt",
                                                                                   "Forbidden")
        assert "write" in body["message"] and "contents" in body["message"]
        assert not (root / "b.txt").exists()
        assert [(e["username"], e["action"], e["resource"], e["path"], e["plugin"]) for e in denials] == [
            ("viewer", "write", "contents", "b.txt", "rules")]
        assert "timestamp" in denials[0]

        # The path the hook sees is where the write would land.
        sneaky = editor.put("/api/contents/public/%2E%2E/private/x.txt", json={"type": "file", "format": "text",
                                                                              "content": "x"})
        assert (sneaky.status_code, sneaky.json()["path"]) == (403, "private/x.txt")
        assert ("editor", "write", "contents", "private/x.txt") in rules.asked
        # Paths from the body are checked too: a rename into private/, a copy out of it.
        assert editor.patch("/api/contents/a.txt", json={"path": "private/a.txt"}).status_code == 403
        assert editor.post("/api/contents/", json={"copy_from": "private/secret.txt"}).status_code == 403
        assert (root / "a.txt").exists() and sorted(p.name for p in (root / "private").iterdir()) == ["secret.txt"]
        assert editor.put("/api/contents/c.txt", json={"type": "file", "format": "text",
                                                       "content": "c"}).status_code == 201


def test_any_false_denies_and_failures_deny(served: Served) -> None:
    with as_user(served, "admin") as admin:
        assert admin.get("/api/kernels").status_code == 200
        vetoed = admin.get("/api/kernelspecs")
        assert (vetoed.status_code, vetoed.json()["resource"]) == (403, "kernelspecs")
        assert admin.post("/api/events", json={"schema_id": DENIED_SCHEMA, "data": {}}).status_code == 403
        # A websocket is refused before the upgrade, with the same JSON.
        with pytest.raises(InvalidStatus) as refused:
            ws_client.connect(served.ws_url + "/api/events/subscribe", additional_headers={"X-Test-User": "admin"})
        assert refused.value.response.status_code == 403
        assert json.loads(refused.value.response.body)["resource"] == "events"


def test_api_me_reports_permissions(served: Served) -> None:
    wanted = json.dumps({"contents": ["read", "write"], "kernels": ["read", "execute"], "kernelspecs": ["read"]})
    with as_user(served, "viewer") as viewer, as_user(served, "editor") as editor:
        assert viewer.get("/api/me", params={"permissions": wanted}).json()["permissions"] == {
            "contents": ["read"], "kernels": ["read"], "kernelspecs": []}
        me = editor.get("/api/me", params={"permissions": wanted}).json()
        assert me["identity"]["username"] == "editor"
        assert me["permissions"] == {"contents": ["read", "write"], "kernels": ["read", "execute"], "kernelspecs": []}
        for bad in ("[1]", '{"contents": "read"}', '{"contents": [1]}', "{"):
            answer = viewer.get("/api/me", params={"permissions": bad})
            assert answer.status_code == 400 and "permissions should be a JSON dict" in answer.json()["message"]


def test_writable_is_the_users(served: Served) -> None:
    with as_user(served, "viewer") as viewer, as_user(served, "editor") as editor, as_user(served, "admin") as admin:
        assert viewer.get("/api/contents/a.txt").json()["writable"] is False
        assert editor.get("/api/contents/a.txt").json()["writable"] is True
        listing = {e["name"]: e["writable"] for e in editor.get("/api/contents/").json()["content"]}
        assert listing == {"a.txt": True, "private": False}
        assert admin.get("/api/contents/private/secret.txt").json()["writable"] is True
