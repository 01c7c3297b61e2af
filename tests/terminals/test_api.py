"""The REST API as jupyter_server_terminals answers it, errors, authorization, the Origin check,
and what a server without the extension answers (404, JupyterLab told there are no terminals)."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from carme import create_app
from carme.hooks import hookimpl
from tests.lab.conftest import page_config
from tests.serving import AUTH, TOKEN, Served, serve_here
from tests.terminals.conftest import SHELL, TermClient, serving

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$")
EVIL = "http://evil.example"


@contextlib.asynccontextmanager
async def api(served: Served) -> Any:
    async with httpx.AsyncClient(base_url=served.url, headers=AUTH, timeout=30) as client:
        yield client


async def test_rest_models_and_status_codes(root: Path) -> None:
    async with serving(root) as served, api(served) as client:
        assert (await client.get("/api/terminals")).json() == []
        first = await client.post("/api/terminals")
        assert first.status_code == 200  # not 201: the anchor's code, which JupyterLab checks
        assert first.json()["name"] == "1" and ISO.match(first.json()["last_activity"])
        assert set(first.json()) == {"name", "last_activity"}
        second = (await client.post("/api/terminals", json={})).json()
        named = (await client.post("/api/terminals", json={"name": "work_2", "cwd": ""})).json()
        assert (second["name"], named["name"]) == ("2", "work_2")
        assert [t["name"] for t in (await client.get("/api/terminals")).json()] == ["1", "2", "work_2"]
        got = await client.get("/api/terminals/work_2")
        assert got.status_code == 200 and got.json()["name"] == "work_2"

        assert (await client.delete("/api/terminals/1")).status_code == 204
        missing = await client.get("/api/terminals/1")
        assert missing.status_code == 404
        assert missing.json() == {"message": "Terminal not found: 1", "reason": "Not Found"}
        assert (await client.delete("/api/terminals/1")).status_code == 404
        # The lowest free number is taken again.
        assert (await client.post("/api/terminals")).json()["name"] == "1"


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"name": "work_2"}, 409, "already exists"),
    ({"name": "a/b"}, 400, "'a/b' is not valid"),
    ({"name": ""}, 400, "'' is not valid"),
    ({"name": 7}, 400, "7 is not valid"),
    ({"cwd": "../outside"}, 400, "outside the served folder"),
    ({"cwd": "/"}, 400, "outside the served folder"),
    ({"cwd": "no-such-folder"}, 400, "not a directory"),
    ({"cwd": "a-file.txt"}, 400, "not a directory"),
    ({"cwd": 3}, 400, "cwd must be a string"),
    ([1, 2], 400, "must be a JSON object"),
])
async def test_bad_requests_name_what_is_wrong(root: Path, body: Any, status: int, words: str) -> None:
    (root / "a-file.txt").write_text("x")
    (root.parent / "outside").mkdir()
    async with serving(root) as served, api(served) as client:
        assert (await client.post("/api/terminals", json={"name": "work_2"})).status_code == 200
        answer = await client.post("/api/terminals", json=body)
        assert answer.status_code == status, answer.text
        assert words in answer.json()["message"] and answer.json()["reason"]
        assert [t["name"] for t in (await client.get("/api/terminals")).json()] == ["work_2"]
    async with serving(root) as served, api(served) as client:
        bad_json = await client.post("/api/terminals", content=b"{nope")
        assert bad_json.status_code == 400 and "not valid JSON" in bad_json.json()["message"]


async def test_cwd_inside_the_root_by_absolute_path(root: Path) -> None:
    (root / "sub").mkdir()
    async with serving(root) as served, api(served) as client:
        answer = await client.post("/api/terminals", json={"cwd": str(root / "sub")})
        assert answer.status_code == 200, answer.text


async def test_websocket_to_an_unknown_terminal_is_404_and_creates_nothing(root: Path) -> None:
    async with serving(root) as served, api(served) as client:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{served.ws_url}/terminals/websocket/9", additional_headers=AUTH, proxy=None):
                pass
        assert refused.value.response.status_code == 404
        assert (await client.get("/api/terminals")).json() == []


async def test_authentication_and_origin_as_kernel_websockets(root: Path) -> None:
    async with serving(root) as served, api(served) as client:
        name = (await client.post("/api/terminals")).json()["name"]
        url = f"{served.ws_url}/terminals/websocket/{name}"
        async with httpx.AsyncClient(base_url=served.url) as anonymous:
            assert (await anonymous.get("/api/terminals")).status_code == 403
            assert (await anonymous.post("/api/terminals")).status_code == 403
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, proxy=None):
                pass
        assert refused.value.response.status_code == 403
        # A browser: the login cookie from one ?token= request; other origins are refused.
        async with httpx.AsyncClient(base_url=served.url) as browser:
            assert (await browser.get("/api/status", params={"token": TOKEN})).status_code == 200
            cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, additional_headers={"Cookie": cookie}, origin=EVIL, proxy=None):  # type: ignore[arg-type]
                pass
        assert refused.value.response.status_code == 403
        async with connect(url, additional_headers={"Cookie": cookie}, origin=served.url, proxy=None) as ws:  # type: ignore[arg-type]
            assert await ws.recv() == '["setup",{}]'
        # The token proves the page may, whatever its origin (as jupyter_server).
        async with connect(url + f"?token={TOKEN}", origin=EVIL, proxy=None) as ws:  # type: ignore[arg-type]
            assert await ws.recv() == '["setup",{}]'


class ReadOnly:
    """May look at terminals, not create, delete or use them."""

    name = "read-only-terminals"

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    @hookimpl
    def carme_permission(self, action: str, resource: str) -> bool | None:
        self.asked.append((action, resource))
        return action == "read" if resource == "terminals" else None


async def test_routes_declare_their_permissions_on_terminals(root: Path) -> None:
    policy = ReadOnly()
    app = create_app(str(root), token=TOKEN, extensions=["terminals"], config_files=False, plugins=[policy],
                     settings={"terminals.shell": SHELL})
    async with serve_here(app) as served, api(served) as client:
        manager = served.app.server.services["terminals"]
        await manager.create("mine")
        assert (await client.get("/api/terminals")).status_code == 200
        assert (await client.get("/api/terminals/mine")).status_code == 200
        denied = await client.post("/api/terminals")
        assert denied.status_code == 403
        assert (denied.json()["action"], denied.json()["resource"]) == ("write", "terminals")
        assert (await client.delete("/api/terminals/mine")).status_code == 403
        with pytest.raises(InvalidStatus) as refused:
            async with TermClient.open(served, "mine"):
                pass
        assert refused.value.response.status_code == 403
        assert {("read", "terminals"), ("write", "terminals"), ("execute", "terminals")} <= set(policy.asked)
        assert list(manager.terminals) == ["mine"]


async def test_jupyterlab_is_told_whether_terminals_exist(root: Path) -> None:
    with_terminals = create_app(str(root), token=TOKEN, extensions=["lab", "terminals"], config_files=False)
    async with serve_here(with_terminals) as served, api(served) as client:
        assert page_config((await client.get("/lab")).text)["terminalsAvailable"] is True
    without = create_app(str(root), token=TOKEN, extensions=["lab"], config_files=False)
    async with serve_here(without) as served, api(served) as client:
        assert page_config((await client.get("/lab")).text)["terminalsAvailable"] is False
        assert (await client.get("/api/terminals")).status_code == 404
        assert (await client.post("/api/terminals")).status_code == 404
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{served.ws_url}/terminals/websocket/1", additional_headers=AUTH, proxy=None):
                pass
        assert refused.value.response.status_code == 404
