"""The dashboards extension's own hooks (Voila's prelaunch_hook and page_config_hook):
``carme_dashboards_before_launch`` changes a new visit's notebook and environment or refuses
it; ``carme_dashboards_extra_page_config`` adds to the page config."""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from nbformat import NotebookNode
from nbformat.v4 import new_code_cell
from starlette.requests import Request

from carme import create_app
from carme.errors import ApiError
from carme.hooks import hookimpl
from carme_dashboards.routes import COOKIE_PREFIX
from tests.dashboards.site import CONFIG, SENTINEL, cells, http, kernel_ids, write_notebook
from tests.polling import wait_until
from tests.serving import TOKEN, serve


class Prelaunch:
    """Parameters from the query into a first cell, a variable into the kernel, no 'guest' visits."""

    name = "prelaunch"

    def __init__(self) -> None:
        self.calls: list[str] = []

    @hookimpl
    async def carme_dashboards_before_launch(self, server: Any, request: Request, path: str,
                                             notebook: NotebookNode, env: dict[str, str]) -> None:
        self.calls.append(path)
        if request.query_params.get("user") == "guest":
            raise ApiError(403, "guests may not open this dashboard", "Forbidden")
        city = request.query_params.get("city", "nowhere")
        notebook.cells.insert(0, new_code_cell(f"city = {city!r}  # {SENTINEL}"))
        env["DASHBOARD_TENANT"] = "acme"


class PageConfig:
    name = "page-config"

    @hookimpl
    def carme_dashboards_extra_page_config(self, server: Any, request: Request, path: str,
                                           page_config: dict[str, Any]) -> dict[str, Any] | None:
        return {"productName": f"ACME {path}", "theme": page_config["theme"]}


def served_with(root: Path, *plugins: object) -> Any:
    app = create_app(str(root), token=TOKEN, extensions=["dashboards"], config_files=False, plugins=list(plugins))
    return serve(app)


def test_hook_carme_dashboards_before_launch(root: Path) -> None:
    write_notebook(root / "nb.ipynb", "import os; print('weather in', city, 'for', os.environ['DASHBOARD_TENANT'])")
    hook = Prelaunch()
    with served_with(root, hook) as served, http(served) as client:
        html = client.get("dashboards/render/nb.ipynb?city=Oslo").text
        assert "weather in Oslo for acme" in cells(html)[1] and SENTINEL not in html
        assert client.get("dashboards/render/nb.ipynb?city=Oslo").status_code == 200
        assert hook.calls == ["nb.ipynb"]  # the reload found its visit: no new launch
        refused = client.get("dashboards/render/nb.ipynb?user=guest")
        assert refused.status_code == 403 and "guests may not open this dashboard" in refused.text
        assert len(kernel_ids(served)) == 1  # the refused visit started no kernel


class GatedPrelaunch:
    """Holds every launch until the test opens the gate; counts them."""

    name = "gated-prelaunch"

    def __init__(self) -> None:
        self.calls = 0
        self.gate = threading.Event()

    @hookimpl
    async def carme_dashboards_before_launch(self, server: Any, request: Request, path: str,
                                             notebook: NotebookNode, env: dict[str, str]) -> None:
        self.calls += 1
        await asyncio.to_thread(self.gate.wait, 60)


def test_two_racing_requests_of_one_visit_launch_it_once(root: Path) -> None:
    write_notebook(root / "nb.ipynb", "print('hi')")
    hook = GatedPrelaunch()
    with served_with(root, hook) as served:
        visits = served.app.server.services["dashboards"].visits
        # One browser (its visit cookie) loads the page twice at once: a double click, two tabs.
        cookie = {COOKIE_PREFIX + f"127-0-0-1-{served.port}": secrets.token_urlsafe(24)}

        def load() -> str:
            with http(served, cookies=cookie) as client:
                response = client.get("dashboards/render/nb.ipynb")
                assert response.status_code == 200, response.text
                match = CONFIG.search(response.text)
                assert match is not None
                return str(json.loads(match.group(1))["kernelId"])

        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(load)
            wait_until(lambda: hook.calls == 1, "the first launch to reach the hook")
            second = pool.submit(load)
            # The second either waits for the first's launch, or (the race) launches again.
            wait_until(lambda: visits.waiting == 1 or hook.calls == 2, "the second request to arrive")
            hook.gate.set()
            assert first.result() == second.result()
        assert hook.calls == 1
        assert len(kernel_ids(served)) == 1


def test_hook_carme_dashboards_extra_page_config(root: Path) -> None:
    write_notebook(root / "nb.ipynb", "print('hi')")
    with served_with(root, PageConfig()) as served, http(served) as client:
        match = CONFIG.search(client.get("dashboards/render/nb.ipynb").text)
        assert match is not None
        config = json.loads(match.group(1))
        assert config["productName"] == "ACME nb.ipynb" and config["kernelId"]  # added, the rest kept


class RefusedReload:
    """Refuses the page config of every request after the first (a plugin's transient failure)."""

    name = "refused-reload"

    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    def carme_dashboards_extra_page_config(self, server: Any, request: Request, path: str,
                                           page_config: dict[str, Any]) -> dict[str, Any] | None:
        self.calls += 1
        if self.calls > 1:
            raise ApiError(503, "the page config is unavailable", "Service Unavailable")
        return None


def test_a_reload_whose_page_config_fails_leaves_the_visit_alone(root: Path) -> None:
    write_notebook(root / "nb.ipynb", "print('hi')")
    with served_with(root, RefusedReload()) as served, http(served) as client:
        assert "hi" in cells(client.get("dashboards/render/nb.ipynb").text)[0]
        (kernel_id,) = kernel_ids(served)
        refused = client.get("dashboards/render/nb.ipynb")  # the same visit (cookie, path, query)
        assert refused.status_code == 503 and "the page config is unavailable" in refused.text
        assert kernel_ids(served) == {kernel_id}  # the first page's kernel runs on
        assert not served.app.server.kernels.get(kernel_id).closed
