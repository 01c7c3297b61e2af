"""Two JupyterLab pages (two Chromium contexts: two users) on one notebook, through JupyterLab's
own collaboration frontend (jupyter-docprovider, jupyter-collaboration-ui) loaded by carme-lab.

Typing in one shows in the other, a cell added in the second shows in the first, the file on
disk has both; cells run on the server (serverSideExecution), both pages are closed, and a page
opened again shows the output. Screenshots of each step go to test-artifacts/lab/collab-*.
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


@pytest.fixture
def collab_lab(root: Path) -> Iterator[Served]:
    (root / "shared.ipynb").write_text(json.dumps(notebook("")))
    app = create_app(str(root), token=TOKEN, extensions=["lab", "collab", "watch"],
                     settings={"collab.server_side_execution": True, "collab.save_delay": 0.5})
    with serve(app) as running:
        yield running


def open_notebook(flow: Flow, workspace: str) -> None:
    """The notebook in a workspace of its own (pages sharing a workspace would fight over its layout)."""
    flow.page.goto(f"{flow.served.url}/lab/workspaces/{workspace}/tree/shared.ipynb?token={TOKEN}")
    flow.page.wait_for_selector(CELLS)
    flow.wait_kernel("Idle")
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

        # Typing in the first page shows in the second.
        type_into(a, 0, "x = 41")
        editor(b, 0).filter(has_text="x = 41").wait_for()
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
