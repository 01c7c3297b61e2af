"""carme's own JupyterLab extension (labextensions/jupyterlab), in the Debian Chromium: the server
extensions panel, files changed outside JupyterLab, and every feature off when its server
extension is. Each page collects console errors and failed requests: none is expected."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.browser import browsing, open_lab
from tests.lab.conftest import page_config
from tests.serving import Served

# carme-lab's own labextension; the others (collab's frontend, the dashboards) stay out of these tests.
OFF = {"collab": False, "dashboards": False, "terminals": False}
LISTING = ".jp-DirListing-item[title^='Name: {}']"


def notebook(source: str) -> str:
    return json.dumps({"cells": [{"cell_type": "code", "source": source, "metadata": {}, "outputs": [],
                                  "execution_count": None, "id": "c1"}],
                       "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                                   "language": "python"}},
                       "nbformat": 4, "nbformat_minor": 5})


def test_the_labextension_is_served_and_knows_what_runs(serve_app: Callable[..., Served]) -> None:
    served = serve_app(extensions={**OFF, "widgets": False})
    with served.client() as client:
        config = page_config(client.get("/lab").text)
        (ours,) = [ext for ext in config["federated_extensions"] if ext["name"] == "@carme/jupyterlab"]
        assert client.get(f"/lab/extensions/@carme/jupyterlab/{ours['load']}").status_code == 200
    assert {"lab", "watch"} <= set(config["carmeExtensions"])
    assert not {"collab", "dashboards", "widgets"} & set(config["carmeExtensions"])


def test_server_extensions_panel_disables_one(chromium: Any, serve_app: Callable[..., Served],
                                              jupyter_env: Path) -> None:
    served = serve_app(extensions=OFF)
    with browsing(chromium, served, "/", "carme-extensions-panel") as flow:
        page = flow.page
        open_lab(flow)
        page.locator(".lm-TabBar-tab[data-id='carme-server-extensions']").click()
        panel = page.locator("#carme-server-extensions")
        for name in ("lab", "widgets", "watch"):
            row = panel.locator(f".carme-ServerExtensions-item[data-name='{name}']")
            row.get_by_text("enabled, running").wait_for()
            assert row.locator(".carme-ServerExtensions-toggle").is_checked()
        panel.locator(".carme-ServerExtensions-item[data-name='collab']").get_by_text("disabled, not running").wait_for()
        flow.shot("panel")

        panel.locator(".carme-ServerExtensions-item[data-name='watch'] .carme-ServerExtensions-toggle").uncheck()
        watch = panel.locator(".carme-ServerExtensions-item[data-name='watch']")
        watch.get_by_text("restart needed").wait_for()
        watch.get_by_text("disabled, running").wait_for()
        assert not watch.locator(".carme-ServerExtensions-toggle").is_checked()
        panel.get_by_text("Restart carme to apply").wait_for()
        flow.shot("watch-disabled")

        state_file = jupyter_env / "config" / "carme_config.d" / "watch.json"
        assert json.loads(state_file.read_text()) == {"extensions": {"watch": False}}
        watch.get_by_text(f"set by {state_file}").wait_for()
        listed = {e["name"]: e for e in flow.api.get("api/extensions").json()["extensions"]}
        assert (listed["watch"]["enabled"], listed["watch"]["running"]) == (False, True)


def test_files_changed_on_disk(chromium: Any, serve_app: Callable[..., Served], root: Path) -> None:
    (root / "notes.txt").write_text("first version\n")
    served = serve_app(extensions=OFF)
    with browsing(chromium, served, "/", "carme-changed-on-disk") as flow:
        page = flow.page
        open_lab(flow)
        page.locator(LISTING.format("notes.txt")).wait_for()

        # A file written on disk is listed without waiting for the file browser's poll (which
        # the extension slows to minutes while watch events arrive).
        (root / "fresh.txt").write_text("made outside JupyterLab\n")
        page.locator(LISTING.format("fresh.txt")).wait_for()
        (root / "fresh.txt").rename(root / "renamed.txt")
        page.locator(LISTING.format("renamed.txt")).wait_for()
        page.locator(LISTING.format("fresh.txt")).wait_for(state="detached")
        flow.shot("listed")

        # An open file changed on disk: a bar, no dialog; Reload loads the new text.
        page.locator(LISTING.format("notes.txt")).dblclick()
        editor = page.locator(".jp-FileEditor:not(.lm-mod-hidden) .cm-content")
        editor.get_by_text("first version").wait_for()
        (root / "notes.txt").write_text("second version, written by another program\n")
        bar = page.locator(".carme-ChangedOnDisk")
        bar.get_by_text("Changed on disk:").wait_for()
        assert page.locator(".jp-Dialog").count() == 0
        editor.get_by_text("first version").wait_for()  # nothing reloaded before the click
        flow.shot("changed-on-disk")
        bar.get_by_role("button", name="Reload").click()
        editor.get_by_text("second version, written by another program").wait_for()
        bar.wait_for(state="detached")

        # Keep mine: the bar goes, the text stays, and saving overwrites the file without a dialog.
        (root / "notes.txt").write_text("third version, from outside\n")
        bar.get_by_text("Changed on disk:").wait_for()
        bar.get_by_role("button", name="Keep mine").click()
        bar.wait_for(state="detached")
        editor.click()
        page.keyboard.press("Control+End")
        page.keyboard.type("mine")
        page.keyboard.press("Control+s")
        page.locator(".lm-TabBar-tab.jp-mod-current:not(.jp-mod-dirty)").wait_for()
        assert page.locator(".jp-Dialog").count() == 0
        assert (root / "notes.txt").read_text() == "second version, written by another program\nmine"
        flow.shot("kept-mine")


def test_features_stay_away_without_their_server_extensions(chromium: Any, lab_server: Served, root: Path) -> None:
    (root / "a.ipynb").write_text(notebook("1+1"))
    with browsing(chromium, lab_server, "/", "carme-features-off") as flow:
        page = flow.page
        open_lab(flow)
        assert json.loads(httpx.get(f"{lab_server.url}/api").text)["version"]
        page.locator(LISTING.format("a.ipynb")).dblclick()
        flow.wait_kernel("Idle")
        page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) [data-jp-item-name='cellType']").wait_for()
        assert page.locator("[data-jp-item-name='carme-dashboard']").count() == 0
        page.locator(LISTING.format("a.ipynb")).click(button="right")
        page.locator(".lm-Menu").get_by_text("Open With").wait_for()
        assert page.locator(".lm-Menu").get_by_text("Open as dashboard").count() == 0
        page.keyboard.press("Escape")
        (root / "outside.txt").write_text("no watch, no event\n")
        # Without watch the file shows up at JupyterLab's own next poll (or a manual refresh).
        page.locator(".jp-FileBrowser [data-command='filebrowser:refresh']").click()
        page.locator(LISTING.format("outside.txt")).wait_for()


def test_dashboard_preview_renders_again_on_save(chromium: Any, serve_app: Callable[..., Served], root: Path) -> None:
    (root / "app.ipynb").write_text(notebook('print("before the edit")'))
    served = serve_app(extensions={"collab": False})
    with browsing(chromium, served, "/", "carme-dashboard-preview") as flow:
        page = flow.page
        open_lab(flow)
        page.locator(LISTING.format("app.ipynb")).click(button="right")
        page.locator(".lm-Menu").get_by_text("Open dashboard in a new browser tab").wait_for()
        page.keyboard.press("Escape")
        page.locator(LISTING.format("app.ipynb")).dblclick()
        flow.wait_kernel("Idle")
        flow.toolbar("carme-dashboard").click()
        preview = page.frame_locator(".carme-DashboardPreview iframe")
        preview.locator("#carme-cells").get_by_text("before the edit").wait_for()
        preview.locator("#carme-finished[data-status='ok']").wait_for(state="attached")
        flow.shot("preview")

        editor = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell .cm-content").first
        editor.click()
        page.keyboard.press("Control+a")
        page.keyboard.type('print("after the edit")')
        page.keyboard.press("Control+s")
        preview.locator("#carme-cells").get_by_text("after the edit").wait_for()
        assert preview.locator("#carme-cells").get_by_text("before the edit").count() == 0
        preview.locator("#carme-finished[data-status='ok']").wait_for(state="attached")
        flow.shot("preview-after-save")
