"""A test-only site for the dashboard page's client on its own: a real carme (kernels, websocket)
plus what the page <-> client contract (extensions/dashboards/CONTRACT.md) asks of the server,
reduced to the least: a page streamed in parts the test releases one by one, the built client's
static files, and the visit's kernel API at dashboards/api/ (carme's own /api/kernels with the
token added, standing in for the extension's visitor endpoint)."""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import sys
import threading
from collections.abc import AsyncIterator, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from starlette.responses import StreamingResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from carme import create_app
from carme_dashboards.client import SCRIPT, STYLE, THEMES, check_client
from tests.conftest import TOKEN
from tests.kernels.wsclient import Client, stdout
from tests.serving import Served, serve

PAGE_PATH = "/dashboard"
CLIENT_PREFIX = "/dashboards/static/client/"
KERNEL_API_PREFIX = "/dashboards/api/kernels/"
LABEXTENSIONS_PREFIX = "/dashboards/labextensions/"
# Where pip puts prebuilt labextensions (ipympl's jupyter-matplotlib, jupyterlab_widgets' manager).
LABEXTENSIONS = Path(sys.prefix) / "share" / "jupyter" / "labextensions"


@dataclass
class Part:
    """A piece of the page body, streamed once its gate (if any) is opened by the test."""

    html: str
    gate: threading.Event | None = None


@dataclass
class StreamedPage:
    """The page the site serves: the contract's head for ``kernel_id``, then ``parts``."""

    kernel_id: str
    parts: list[Part] = field(default_factory=list)
    federated_extensions: list[dict[str, str]] = field(default_factory=list)
    theme: str = "light"

    def head(self) -> str:
        config = {
            "baseUrl": "/",
            "wsUrl": "",
            "appVersion": "test",
            "kernelId": self.kernel_id,
            "kernelApiUrl": "dashboards/api/",
            "fullLabextensionsUrl": LABEXTENSIONS_PREFIX.rstrip("/"),
            "federated_extensions": self.federated_extensions,
            "theme": self.theme,
        }
        # The config is JSON inside <script>: "</" must not close the element early.
        data = json.dumps(config).replace("</", "<\\/")
        return (
            "<!DOCTYPE html><html><head><meta charset='utf-8'><title>client test</title>"
            # No favicon request: the test page has none.
            "<link rel='icon' href='data:,'>"
            f"<script id='jupyter-config-data' type='application/json'>{data}</script>"
            f"<link rel='stylesheet' href='{CLIENT_PREFIX}{THEMES[self.theme]}'>"
            f"<link rel='stylesheet' href='{CLIENT_PREFIX}{STYLE}'>"
            f"<script src='{CLIENT_PREFIX}{SCRIPT}' async></script>"
            "</head><body><div id='carme-kernel-status'></div><main id='carme-cells'>"
        )

    async def stream(self) -> AsyncIterator[str]:
        yield self.head()
        for part in self.parts:
            if part.gate is not None:
                # The test opens the gate from its own thread once it has seen what it waits for.
                opened = await asyncio.to_thread(part.gate.wait, 60)
                if not opened:
                    return
            yield part.html
        yield "</main></body></html>"


class ClientSite:
    """The ASGI app: the page, the client's files and the kernel API in front of ``carme_app``."""

    def __init__(self, carme_app: Any, token: str, page: StreamedPage) -> None:
        self.carme = carme_app
        self.page = page
        self.token = token
        self.static = StaticFiles(directory=check_client())
        self.labextensions = StaticFiles(directory=LABEXTENSIONS)
        # The open kernel websockets: their loop and ASGI send, to cut them (drop_websockets).
        self._sockets: list[tuple[asyncio.AbstractEventLoop, Send]] = []

    def drop_websockets(self) -> int:
        """Close every open kernel websocket from the server side, as a network drop would; how many."""
        sockets = list(self._sockets)
        for loop, send in sockets:
            asyncio.run_coroutine_threadsafe(send({"type": "websocket.close", "code": 1012}), loop).result(10)
        return len(sockets)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.carme(scope, receive, send)
            return
        path: str = scope["path"]
        if scope["type"] == "http" and path == PAGE_PATH:
            response = StreamingResponse(self.page.stream(), media_type="text/html")
            await response(scope, receive, send)
        elif scope["type"] == "http" and path.startswith(CLIENT_PREFIX):
            await self.static({**scope, "path": "/" + path[len(CLIENT_PREFIX):], "root_path": ""}, receive, send)
        elif scope["type"] == "http" and path.startswith(LABEXTENSIONS_PREFIX):
            inner = "/" + path[len(LABEXTENSIONS_PREFIX):]
            await self.labextensions({**scope, "path": inner, "root_path": ""}, receive, send)
        elif path.startswith(KERNEL_API_PREFIX):
            inner = path[len("/dashboards"):]
            headers = [*scope["headers"], (b"authorization", f"token {self.token}".encode())]
            socket = (asyncio.get_running_loop(), send)
            if scope["type"] == "websocket":
                self._sockets.append(socket)
            try:
                await self.carme({**scope, "path": inner, "raw_path": inner.encode(), "headers": headers}, receive, send)
            finally:
                if socket in self._sockets:
                    self._sockets.remove(socket)
        else:
            await self.carme(scope, receive, send)


def section(index: int, body: str) -> str:
    """A rendered cell as the server streams it."""
    return f"<section class='carme-cell' data-cell-index='{index}'>{body}</section>\n"


def widget(model_id: str, fallback: str) -> str:
    """A widget view output as the server renders it: the element and its text fallback."""
    return (f"<div class='carme-widget' data-model-id='{html.escape(model_id)}'>"
            f"<pre class='carme-widget-fallback'>{html.escape(fallback)}</pre></div>")


def progress(done: int, total: int) -> str:
    return f"<div class='carme-progress' data-done='{done}' data-total='{total}'></div>\n"


def parts(*items: str | threading.Event) -> Iterable[Part]:
    """Page parts from HTML strings; an Event holds back the HTML that follows it."""
    gate: threading.Event | None = None
    for item in items:
        if isinstance(item, threading.Event):
            gate = item
        else:
            yield Part(item, gate)
            gate = None


def federated_extension(name: str) -> dict[str, str]:
    """A page config ``federated_extensions`` entry for an installed labextension, as JupyterLab
    makes it from the extension's package.json."""
    build = json.loads((LABEXTENSIONS / name / "package.json").read_text())["jupyterlab"]["_build"]
    return {"name": name, **{key: build[key] for key in ("load", "extension", "mimeExtension", "style") if key in build}}


def run(served: Served, kernel_id: str, code: str) -> str:
    """Run ``code`` in the kernel over carme's own websocket; its stdout. (In a thread of its
    own: Playwright's sync API keeps an event loop running in the test's thread.)"""
    async def go() -> str:
        client = await Client.open(served.ws_url, kernel_id)
        try:
            iopub, reply = await client.execute(code, timeout=60)
        finally:
            await client.close()
        assert reply.content["status"] == "ok", reply.content
        return stdout(iopub)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, go()).result()


@contextlib.contextmanager
def client_site_running(root: Path) -> Iterator[tuple[Served, StreamedPage]]:
    """The site on a real uvicorn with a kernel started; the test fills in the page before opening it."""
    carme = create_app(str(root), token=TOKEN, extensions=[])
    page = StreamedPage(kernel_id="")
    with serve(ClientSite(carme, TOKEN, page)) as running, \
            httpx.Client(base_url=running.url, headers={"Authorization": f"token {TOKEN}"}, timeout=60) as http:
        response = http.post("/api/kernels", json={"name": "python3"})
        assert response.status_code == 201, response.text
        page.kernel_id = response.json()["id"]
        yield running, page
        http.delete(f"/api/kernels/{page.kernel_id}")


def off_origin(urls: Iterable[str], served: Served) -> list[str]:
    """The URLs that leave the page's origin. In-page data is not a request to anywhere:
    blob: URLs of the page's own origin (ipympl draws its images from them) and data: URLs."""
    own = (served.url + "/", served.ws_url + "/", f"blob:{served.url}/", "data:")
    return [url for url in urls if not url.startswith(own)]
