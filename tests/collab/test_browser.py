"""Two JupyterLab pages (two Chromium contexts, one token user) on one notebook, through
JupyterLab's own collaboration frontend (jupyter-docprovider, jupyter-collaboration-ui) loaded by
carme-lab.

Typing in one shows in the other (with the typist's cursor), a cell added in the second shows in
the first, the file on disk has both; cells run on the server (serverSideExecution), both pages
are closed, and a page opened again shows the output. With carme-watch on too, collaboration owns
the file: neither carme's "Changed on disk" bar nor JupyterLab's "File Changed" dialog shows while
the server saves or another program writes the file. Screenshots of each step go to
test-artifacts/lab/collab-*.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from carme import create_app
from tests.browser import ARTIFACTS, Flow, browsing
from tests.collab.clients import notebook
from tests.conftest import TOKEN
from tests.serving import Served, serve
from tests.watch.conftest import wait_until

CELLS = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell"
# The hash of the file version the current document's context last saw (exposeAppInBrowser).
PAGE_HASH = "() => window.jupyterapp.shell.currentWidget?.context?.contentsModel?.hash ?? null"


@pytest.fixture
def collab_lab(root: Path) -> Iterator[Served]:
    (root / "shared.ipynb").write_text(json.dumps(notebook("")))
    app = create_app(str(root), token=TOKEN, extensions=["lab", "collab", "watch"],
                     settings={"collab.server_side_execution": True, "collab.save_delay": 0.5,
                               "lab.page_config": {"exposeAppInBrowser": True}})
    with serve(app) as running:
        yield running


def open_notebook(flow: Flow, workspace: str) -> None:
    """The notebook in a workspace of its own (pages sharing a workspace would fight over its layout)."""
    flow.page.goto(f"{flow.served.url}/lab/workspaces/{workspace}/tree/shared.ipynb?token={TOKEN}")
    flow.page.wait_for_selector(CELLS)
    flow.wait_kernel("Idle")
    decline_news(flow)


def decline_news(flow: Flow) -> None:
    news = flow.page.locator(".jp-toast-button", has_text="No")
    if news.count():
        news.first.click()


def editor(flow: Flow, index: int) -> Any:
    return flow.page.locator(CELLS).nth(index).locator(".cm-content")


def type_into(flow: Flow, index: int, text: str) -> None:
    editor(flow, index).click()
    flow.page.keyboard.type(text)


def disk_sources(root: Path) -> list[str]:
    return ["".join(c["source"]) for c in json.loads((root / "shared.ipynb").read_text())["cells"]]


def test_two_pages_edit_one_notebook(chromium: Any, collab_lab: Served, root: Path) -> None:
    for name in ("collab-a", "collab-b", "collab-c"):
        shutil.rmtree(ARTIFACTS / name, ignore_errors=True)
    with contextlib.ExitStack() as pages:
        a = pages.enter_context(browsing(chromium, collab_lab, "/", "collab-a"))
        b = pages.enter_context(browsing(chromium, collab_lab, "/", "collab-b"))
        open_notebook(a, "a")
        open_notebook(b, "b")

        # Typing in the first page shows in the second, with the first page's cursor (awareness;
        # drawn by collaboration-ui). Both pages are the token's one user, so no name to tell apart.
        type_into(a, 0, "x = 41")
        editor(b, 0).filter(has_text="x = 41").wait_for()
        b.page.locator(CELLS).nth(0).locator(".jp-remote-cursor").wait_for()
        a.shot("typed")
        b.shot("sees-typing")

        # A cell added in the second page shows in the first.
        b.page.locator(CELLS).first.click()
        b.page.keyboard.press("Escape")
        b.page.keyboard.press("b")
        b.page.locator(CELLS).nth(1).wait_for()
        type_into(b, 1, "print(x + 1)")
        editor(a, 1).filter(has_text="print(x + 1)").wait_for()
        b.shot("added-cell")
        a.shot("sees-cell")
        # Both reach the disk (autosave).
        wait_until(lambda: disk_sources(root) == ["x = 41", "print(x + 1)"], "both edits on disk")

        # Run both cells on the server: from the first page the first, from the second the second.
        editor(a, 0).click()
        a.page.keyboard.press("Control+Enter")
        b.page.locator(CELLS).nth(0).locator(".jp-InputArea-prompt").filter(has_text="[1]:").wait_for()
        editor(b, 1).click()
        b.page.keyboard.press("Control+Enter")
        a.page.locator(CELLS).nth(1).locator(".jp-OutputArea-output").filter(
            has_text=re.compile(r"^\s*42\s*$")).wait_for()
        a.shot("ran")
        b.shot("ran")

    # Both pages are closed; a page opened again shows the output (from the document / the disk).
    with browsing(chromium, collab_lab, "/", "collab-c") as c:
        open_notebook(c, "c")
        c.page.locator(CELLS).nth(1).locator(".jp-OutputArea-output").filter(
            has_text=re.compile(r"^\s*42\s*$")).wait_for()
        c.shot("reopened")
    outputs = json.loads((root / "shared.ipynb").read_text())["cells"][1]["outputs"]
    assert outputs == [{"output_type": "stream", "name": "stdout", "text": ["42\n"]}]


def test_no_changed_on_disk_bar_or_dialog_while_collaboration_saves(chromium: Any, collab_lab: Served,
                                                                    root: Path) -> None:
    (root / "notes.txt").write_text("first version\n")
    shutil.rmtree(ARTIFACTS / "collab-disk", ignore_errors=True)
    with browsing(chromium, collab_lab, "/", "collab-disk") as flow:
        page = flow.page
        page.goto(f"{collab_lab.url}/lab/workspaces/disk/tree/notes.txt?token={TOKEN}")
        editor = page.locator(".jp-FileEditor:not(.lm-mod-hidden) .cm-content")
        editor.get_by_text("first version").wait_for()
        decline_news(flow)
        tab = page.locator(".lm-TabBar-tab.jp-mod-current")
        bar, dialog = page.locator(".carme-ChangedOnDisk"), page.locator(".jp-Dialog")

        # The server autosaves an edit (one edit, so one save); the page learns the file's new
        # version from the document (state.hash), and reads its model again. Ctrl+S after that
        # saves without JupyterLab's "File Changed" dialog (which would hold the save: "Saving
        # completed" would never show). The page's own model is asked: a response seen on the
        # wire may be the page's reads at open, and the page takes the new version in only after
        # the response is in, so a Ctrl+S pressed on the response alone could come first.
        editor.click()
        page.keyboard.press("Control+End")
        page.keyboard.insert_text("typed in the page")
        wait_until(lambda: (root / "notes.txt").read_text() == "first version\ntyped in the page",
                   "the autosave on disk")
        saved = flow.api.get("api/contents/notes.txt", params={"content": 0, "hash": 1}).json()["hash"]
        wait_until(lambda: page.evaluate(PAGE_HASH), "the page to know the saved version", check=lambda h: h == saved)
        page.locator(".lm-TabBar-tab.jp-mod-current:not(.jp-mod-dirty)").wait_for()
        page.keyboard.press("Control+s")
        page.locator(".jp-StatusBar-Widget").get_by_text("Saving completed").wait_for()
        assert dialog.count() == 0
        flow.shot("saved")

        # Another program writes the file: collaboration merges it into the document.
        (root / "notes.txt").write_text("second version, written by another program\n")
        editor.get_by_text("second version, written by another program").wait_for()
        flow.shot("merged")

        # Autosave off (JupyterLab's setting, shared through awareness), an edit not saved, and
        # the file written again: that is collaboration's conflict, reported by its own dialog
        # and by no other once that is dismissed (the conflict's session event is no WARNING,
        # which JupyterLab shows as "opened with two different views"); carme's bar stays away
        # although the page's version of the file is now out of date (the file added afterwards
        # is listed: the page has seen the watch events, and the session event before them).
        settings, autosave = page.locator(".lm-MenuBar-itemLabel", has_text="Settings"), \
            page.locator(".lm-Menu-item", has_text="Autosave Documents")
        settings.click()
        with page.expect_response(lambda r: "/lab/api/settings/@jupyterlab/docmanager-extension" in r.url
                                  and r.request.method == "PUT"):
            autosave.click()
        settings.click()  # the setting is stored first; unchecked, the page has told the server
        page.locator(".lm-Menu-item:not(.lm-mod-toggled)", has_text="Autosave Documents").wait_for()
        page.keyboard.press("Escape")
        editor.click()
        page.keyboard.press("Control+End")
        page.keyboard.type("unsaved mine")
        tab.and_(page.locator(".jp-mod-dirty")).wait_for()  # the server has the edit (state.dirty)
        (root / "notes.txt").write_text("third version, from outside\n")
        dialog.get_by_text("conflict", exact=False).first.wait_for()
        flow.shot("conflict")
        dialog.get_by_role("button", name="Dismiss").click()
        (root / "later.txt").write_text("written after the change\n")
        flow.listed("later.txt").wait_for()
        assert dialog.count() == 0
        assert bar.count() == 0
        assert (root / "notes.txt").read_text() == "third version, from outside\n"  # never overwritten
