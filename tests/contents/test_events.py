"""Contents changes are published on the events websocket and through the contents hook."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import websockets

from carme import create_app
from carme.contents.streamed import StreamedText
from carme.hooks import hookimpl
from tests.serving import AUTH, TOKEN, Served, serve

SCHEMA = "https://events.jupyter.org/jupyter_server/contents_service/v1"


async def _collect(served: Served, actions: list[tuple[str, str, dict[str, Any] | None]],
                   wanted: int) -> list[dict[str, Any]]:
    headers = AUTH
    async with websockets.connect(served.ws_url + "/api/events/subscribe", additional_headers=headers) as ws:
        async with httpx.AsyncClient(base_url=served.url, headers=headers) as client:
            for method, path, body in actions:
                response = await client.request(method, path, json=body)
                assert response.status_code < 300, response.text
        events: list[dict[str, Any]] = []
        async with asyncio.timeout(20):
            while len(events) < wanted:
                event = json.loads(await ws.recv())
                if event["schema_id"] == SCHEMA and event["action"] != "get":
                    events.append(event)
        return events


def test_contents_events_on_websocket(served: Served, root: Path) -> None:
    (root / "a.txt").write_text("a")
    actions = [
        ("PUT", "/api/contents/a.txt", {"type": "file", "format": "text", "content": "b"}),
        ("PUT", "/api/contents/new.txt", {"type": "file", "format": "text", "content": "n"}),
        ("POST", "/api/contents", {"type": "notebook"}),
        ("POST", "/api/contents", {"copy_from": "a.txt"}),
        ("PATCH", "/api/contents/new.txt", {"path": "renamed.txt"}),
        ("DELETE", "/api/contents/renamed.txt", None),
    ]
    events = asyncio.run(_collect(served, actions, 6))
    seen = [(e["action"], e["path"], e.get("source_path")) for e in events]
    assert seen == [("save", "a.txt", None), ("upload", "new.txt", None), ("create", "Untitled.ipynb", None),
                    ("copy", "a-Copy1.txt", "a.txt"), ("rename", "renamed.txt", "new.txt"),
                    ("delete", "renamed.txt", None)]
    assert all(e["version"] == 1 and e["timestamp"].endswith("Z") for e in events)


def test_hook_carme_on_contents_changed(root: Path) -> None:
    calls: list[tuple[str, str, str | None, bool]] = []

    class Watcher:
        @hookimpl
        def carme_on_contents_changed(self, server: Any, action: str, path: str, source_path: str | None) -> None:
            calls.append((action, path, source_path, (root / path).exists()))

    app = create_app(str(root), token=TOKEN, extensions=[], plugins=[Watcher()])
    with serve(app) as running, running.client() as c:
        c.put("/api/contents/x.txt", json={"type": "file", "format": "text", "content": "x"})
        c.get("/api/contents/x.txt")
        c.patch("/api/contents/x.txt", json={"path": "y.txt"})
        c.delete("/api/contents/y.txt")
    assert calls == [("upload", "x.txt", None, True), ("rename", "y.txt", "x.txt", True),
                     ("delete", "y.txt", None, False)]


def test_hook_carme_contents_manager(root: Path) -> None:
    from carme.contents.filemanager import FileContentsManager

    class ReadOnly(FileContentsManager):
        async def save(self, model: dict[str, Any], path: str, *, action: str = "save") -> dict[str, Any]:
            from carme.errors import ApiError

            raise ApiError(403, "read-only contents", "Forbidden")

    class Extension:
        @hookimpl
        def carme_contents_manager(self, server: Any) -> ReadOnly:
            return ReadOnly(str(server.root_dir))

    app = create_app(str(root), token=TOKEN, extensions=[], plugins=[Extension()])
    with serve(app) as running, running.client() as c:
        response = c.put("/api/contents/x.txt", json={"type": "file", "format": "text", "content": "x"})
        assert response.status_code == 403 and response.json()["message"] == "read-only contents"
        assert isinstance(app.server.contents, ReadOnly)
    assert not (root / "x.txt").exists()


def test_hook_carme_before_save(root: Path) -> None:
    """Plugins see (and may change) what a PUT is about to write; a failing one does not stop it."""
    seen: list[str] = []

    class Stamper:
        @hookimpl
        async def carme_before_save(self, server: Any, path: str, model: dict[str, Any]) -> None:
            seen.append(path)
            if model["type"] == "notebook":
                model["content"]["metadata"]["stamped"] = True
            elif path == "big.txt":  # a big body's text is not a str, but may be replaced by one
                assert isinstance(model["content"], StreamedText)
                model["content"] = "".join(model["content"]).upper()

    class Broken:
        @hookimpl
        def carme_before_save(self, server: Any, path: str, model: dict[str, Any]) -> None:
            raise RuntimeError("boom")

    app = create_app(str(root), token=TOKEN, extensions=[], plugins=[Stamper(), Broken()])
    nb = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    with serve(app) as running, running.client() as c:
        response = c.put("/api/contents/n.ipynb", json={"type": "notebook", "format": "json", "content": nb})
        assert response.status_code == 201
        c.put("/api/contents/t.txt", json={"type": "file", "format": "text", "content": "x"})
        # Refused paths never reach the hook.
        assert c.put("/api/contents/..%2Fout.txt", json={"type": "file", "format": "text", "content": "x"}) \
            .status_code == 404
        assert c.put("/api/contents/.hidden", json={"type": "file", "format": "text", "content": "x"}) \
            .status_code == 400
        big = "abc" * (3 << 20)  # past the 8 MiB from which the content is left in the body
        assert c.put("/api/contents/big.txt", json={"type": "file", "format": "text", "content": big}) \
            .status_code == 201
    assert seen == ["n.ipynb", "t.txt", "big.txt"]
    assert (root / "big.txt").read_text() == big.upper()
    assert json.loads((root / "n.ipynb").read_text())["metadata"] == {"stamped": True}
