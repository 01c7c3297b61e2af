"""The real JupyterLab 4 frontend on carme, driven in the Debian Chromium with Playwright.

One server and one browser page for the whole flow, as a person would use it: open /lab with the
token, create a Python notebook from the launcher, run ``1+1``, save, find it in the file browser
and on disk, reload, interrupt a long cell, restart the kernel, rename the notebook. Every failed
request (4xx/5xx) and every console error is collected; only the ones listed in EXPECTED, each
with its reason, are accepted. Screenshots of each step go to test-artifacts/lab/.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Mount

from carme import create_app
from tests.browser import ARTIFACTS, browsing, new_notebook_runs, open_lab
from tests.serving import TOKEN, Served, serve


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
        flow.run_in_new_cell("import time; print('sleeping', flush=True); time.sleep(30)")
        # In the cell, not only "Busy": ipykernel shows busy before it lets SIGINT in for the cell,
        # and an interrupt between the two is ignored or lost.
        flow.cell_output(1).filter(has_text="sleeping").wait_for()
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
        # JupyterLab did not ask whether to fetch Jupyter news (carme's default is no; it asks
        # on start when the setting is "none"), and nothing was fetched from the news feed.
        assert page.locator(".jp-toast-button", has_text="No").count() == 0
        assert not [u for u in flow.requests if "/lab/api/news" in u or "/lab/api/update" in u]
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


def test_unknown_lab_path_shows_jupyterlabs_not_found_dialog(chromium: Any, lab_server: Served) -> None:
    expected = [(r"^404 GET .*/lab/no/such/page", "the unknown page this test opens"),
                (r"^Failed to load resource: .* 404", "Chromium's console line for that page")]
    with browsing(chromium, lab_server, "/", "not-found", expected=expected) as flow:
        flow.page.goto(f"{lab_server.url}/lab/no/such/page?token={TOKEN}")
        flow.page.locator(".jp-Dialog", has_text="Path Not Found").wait_for()
        flow.shot("not-found")
