"""The real JupyterLab 4 frontend on carme, driven in the Debian Chromium with Playwright.

One server and one browser page for the whole flow, as a person would use it: open /lab with the
token, create a Python notebook from the launcher, run ``1+1``, save, find it in the file browser
and on disk, reload, interrupt a long cell, restart the kernel, rename the notebook. Every failed
request (4xx/5xx) and every console error is collected; only the ones listed in EXPECTED, each
with its reason, are accepted. Screenshots of each step go to test-artifacts/lab/.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright import sync_api as playwright_api

from starlette.applications import Starlette
from starlette.routing import Mount

from carme import create_app
from tests.conftest import TOKEN
from tests.serving import Served, serve


CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "lab"
TIMEOUT_MS = 30_000

# (pattern on "STATUS METHOD URL" or on the console text, reason it is expected)
EXPECTED: list[tuple[str, str]] = []


@dataclass
class Problems:
    """Failed requests and console errors seen by the page."""

    items: list[str] = field(default_factory=list)

    def unexpected(self) -> list[str]:
        return [item for item in self.items if not any(re.search(pattern, item) for pattern, _ in EXPECTED)]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (never `playwright install`)")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def lab_server(root: Path) -> Iterator[Served]:
    app = create_app(str(root), token=TOKEN, extensions=["lab"])
    with serve(app) as running:
        yield running


class Flow:
    """The page plus a step counter that names screenshots."""

    def __init__(self, page: Any, served: Served, prefix: str, shots: Path) -> None:
        self.page = page
        self.served = served
        self.prefix = prefix
        self.shots = shots
        self.count = 0
        self.api = httpx.Client(base_url=served.url + prefix, headers={"Authorization": f"token {TOKEN}"},
                                timeout=30)

    def shot(self, name: str) -> None:
        self.count += 1
        self.page.screenshot(path=str(self.shots / f"{self.count:02d}-{name}.png"))

    def wait_kernel(self, state: str) -> None:
        """Wait for the status bar to show the kernel in ``state`` (Idle, Busy, ...)."""
        self.page.locator(".jp-StatusBar-Widget").get_by_text(
            re.compile(rf"Python 3 \(ipykernel\) \| {state}$")).wait_for()

    def cell_output(self, index: int) -> Any:
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").nth(index) \
            .locator(".jp-OutputArea-output")

    def run_in_new_cell(self, code: str) -> None:
        """Type ``code`` into the active (last) cell and run it with Shift+Enter."""
        editor = self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell.jp-mod-active .cm-content")
        editor.click()
        self.page.keyboard.type(code)
        self.page.keyboard.press("Shift+Enter")

    def toolbar(self, item: str) -> Any:
        return self.page.locator(f".jp-NotebookPanel:not(.lm-mod-hidden) [data-jp-item-name='{item}'] button").first


@contextlib.contextmanager
def browsing(chromium: Any, served: Served, prefix: str, shots: str) -> Iterator[Flow]:
    """A fresh browser context on ``served``; on failure a screenshot and the problems seen so
    far; at the end, no failed request or console error beyond EXPECTED."""
    (ARTIFACTS / shots).mkdir(parents=True, exist_ok=True)
    problems = Problems()
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("response", lambda r: r.status >= 400 and problems.items.append(f"{r.status} {r.request.method} {r.url}"))
    page.on("console", lambda m: m.type == "error" and problems.items.append(m.text))
    page.on("pageerror", lambda e: problems.items.append(f"page error: {e}"))
    flow = Flow(page, served, prefix, ARTIFACTS / shots)
    try:
        yield flow
    except Exception as exc:
        flow.shot("failure")
        exc.add_note("failed requests and console errors so far:\n" + "\n".join(problems.items))
        raise
    finally:
        flow.api.close()
        context.close()
    assert problems.unexpected() == [], "\n".join(problems.items)


def open_lab(flow: Flow) -> None:
    """Open /lab with the token: the token is dropped from the URL, the launcher shows."""
    flow.page.goto(f"{flow.served.url}{flow.prefix}lab?token={TOKEN}")
    flow.page.wait_for_selector(".jp-Launcher")
    assert "token" not in flow.page.url
    flow.shot("launcher")
    # JupyterLab asks once whether to fetch Jupyter news; answering saves a user setting.
    flow.page.locator(".jp-toast-button", has_text="No").click()


def new_notebook_runs(flow: Flow) -> None:
    """A Python notebook from the launcher; 1+1 gives 2."""
    flow.page.locator(".jp-LauncherCard[data-category='Notebook']").first.click()
    flow.page.wait_for_selector(".jp-NotebookPanel")
    flow.wait_kernel("Idle")
    flow.shot("new-notebook")
    flow.run_in_new_cell("1+1")
    flow.cell_output(0).filter(has_text=re.compile(r"^\s*2\s*$")).wait_for()
    flow.shot("ran-1-plus-1")


def test_notebook_flow_in_chromium(chromium: Any, lab_server: Served, root: Path) -> None:
    shutil.rmtree(ARTIFACTS / "flow", ignore_errors=True)
    with browsing(chromium, lab_server, "/", "flow") as flow:
        page = flow.page
        open_lab(flow)
        new_notebook_runs(flow)

        # Save; the file browser lists it and the REST API has the output on disk.
        page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").first.click()
        page.keyboard.press("Control+s")
        # JupyterLab 4 offers a rename on the first save of an untitled notebook: keep the name.
        page.locator(".jp-Dialog .jp-mod-accept", has_text="Rename and Save").click()
        page.wait_for_selector(".jp-Dialog", state="detached")
        page.wait_for_selector(".lm-TabBar-tab.jp-mod-current:not(.jp-mod-dirty)")
        page.locator(".jp-DirListing-item[title^='Name: Untitled.ipynb']").wait_for()
        model = flow.api.get("api/contents/Untitled.ipynb").json()
        outputs = model["content"]["cells"][0]["outputs"]
        assert outputs[0]["data"]["text/plain"] == "2", outputs
        assert (root / "Untitled.ipynb").is_file()
        flow.shot("saved")

        # Reload: the notebook reopens from the workspace, with its output.
        page.reload()
        page.wait_for_selector(".jp-NotebookPanel")
        flow.cell_output(0).filter(has_text=re.compile(r"^\s*2\s*$")).wait_for()
        flow.wait_kernel("Idle")
        flow.shot("reloaded")

        # Interrupt a long cell from the toolbar.
        page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").last.click()
        flow.run_in_new_cell("import time; time.sleep(30)")
        flow.wait_kernel("Busy")
        flow.shot("busy")
        flow.toolbar("interrupt").click()
        flow.cell_output(1).filter(has_text="KeyboardInterrupt").wait_for()
        flow.wait_kernel("Idle")
        flow.shot("interrupted")

        # Restart the kernel from the toolbar; the next run counts from 1 again.
        flow.toolbar("restart").click()
        page.locator(".jp-Dialog .jp-mod-accept").click()
        page.wait_for_selector(".jp-Dialog", state="detached")
        flow.wait_kernel("Idle")
        page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").last.click()
        flow.run_in_new_cell("40+2")
        page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").nth(2) \
            .locator(".jp-OutputArea-prompt").filter(has_text="[1]:").wait_for()
        flow.cell_output(2).filter(has_text="42").wait_for()
        flow.shot("restarted")

        # Rename from the File menu.
        page.keyboard.press("Control+s")
        page.wait_for_selector(".lm-TabBar-tab.jp-mod-current:not(.jp-mod-dirty)")
        page.locator(".lm-MenuBar-itemLabel", has_text="File").click()
        page.locator(".lm-Menu-itemLabel", has_text="Rename Notebook").click()
        field_ = page.locator(".jp-Dialog input")
        field_.fill("renamed.ipynb")
        page.locator(".jp-Dialog .jp-mod-accept").click()
        page.locator(".lm-TabBar-tab.jp-mod-current", has_text="renamed.ipynb").wait_for()
        page.locator(".jp-DirListing-item[title^='Name: renamed.ipynb']").wait_for()
        assert flow.api.get("api/contents/renamed.ipynb").status_code == 200
        assert flow.api.get("api/contents/Untitled.ipynb").status_code == 404
        sessions = flow.api.get("api/sessions").json()
        assert [s["path"] for s in sessions] == ["renamed.ipynb"]
        flow.shot("renamed")

        # Settings through the menus: the dark theme is saved as a user setting and its CSS loads.
        page.locator(".lm-MenuBar-itemLabel", has_text="Settings").click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Theme$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^JupyterLab Dark$")).click()
        page.wait_for_selector("body[data-jp-theme-name='JupyterLab Dark']", state="attached")
        page.wait_for_selector("#jupyterlab-splash", state="detached")  # shown while the theme loads
        themes = flow.api.get("lab/api/settings/@jupyterlab/apputils-extension:themes").json()
        assert themes["settings"]["theme"] == "JupyterLab Dark"
        notification = flow.api.get("lab/api/settings/@jupyterlab/apputils-extension:notification").json()
        assert notification["settings"]["fetchNews"] == "false"  # the "No" to Jupyter news, saved
        flow.shot("dark-theme")


def test_lab_under_a_prefix_in_chromium(chromium: Any, root: Path) -> None:
    """carme with a base URL, mounted under a prefix in a host app: pages, REST and the kernel
    websocket all go through /outer/inner/."""
    carme_app = create_app(str(root), token=TOKEN, extensions=["lab"], base_url="/inner/")
    host = Starlette(routes=[Mount("/outer", app=carme_app)], lifespan=carme_app.lifespan)
    shutil.rmtree(ARTIFACTS / "prefix", ignore_errors=True)
    with serve(host) as running, browsing(chromium, running, "/outer/inner/", "prefix") as flow:
        open_lab(flow)
        new_notebook_runs(flow)
        flow.page.keyboard.press("Control+s")
        flow.page.locator(".jp-Dialog .jp-mod-accept", has_text="Rename and Save").click()
        flow.page.wait_for_selector(".lm-TabBar-tab.jp-mod-current:not(.jp-mod-dirty)")
        assert flow.api.get("api/contents/Untitled.ipynb").json()["content"]["cells"][0]["outputs"][0]["data"] \
            == {"text/plain": "2"}
