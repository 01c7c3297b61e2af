"""The example product's viewer in JupyterLab (real Chromium): the notebook an editor is running
opens read-only, running a cell is refused with a message under the cell, nothing on disk changes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from examples.product.app import create_product
from tests.browser import browsing
from tests.examples.accounts import sign_in
from tests.serving import Served, serve

# The cell would leave a file behind if it ever ran.
NOTEBOOK = {"cells": [{"cell_type": "code", "execution_count": None, "id": "c1", "metadata": {}, "outputs": [],
                       "source": "open('viewer-was-here.txt', 'w').write('x')"}],
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                        "language": "python"}},
            "nbformat": 4, "nbformat_minor": 5}
# What JupyterLab asks for on a viewer's behalf and is refused: it saves the workspace layout
# and user settings as the page changes (write on "lab"), and logs each refusal.
VIEWER_REFUSALS = [
    (r"^403 PUT .*/notebooks/lab/api/(workspaces|settings)/", "a viewer may not write lab state"),
    (r"Failed to load resource: the server responded with a status of 403", "the browser logs those 403s"),
]


@pytest.fixture(params=[["lab"], None], ids=["lab", "every-extension"])
def product(root: Path, request: pytest.FixtureRequest) -> Iterator[Served]:
    """The product with JupyterLab alone, and as it ships (collaboration on: the viewer's edits
    reach neither the room's other peers nor the disk)."""
    (root / "report.ipynb").write_text(json.dumps(NOTEBOOK))
    with serve(create_product(root, extensions=request.param)) as served:
        yield served


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in root.iterdir() if p.is_file()}


def test_viewer_in_jupyterlab(chromium: Any, product: Served, root: Path, request: pytest.FixtureRequest) -> None:
    # An editor has the notebook running; the viewer comes to watch.
    with sign_in(product, "grace") as editor:
        xsrf = editor.get("/notebooks/api/me").cookies["_xsrf"]
        session = editor.post("/notebooks/api/sessions", headers={"X-XSRFToken": xsrf}, json={
            "path": "report.ipynb", "type": "notebook", "name": "", "kernel": {"name": "python3"}})
        assert session.status_code == 201, session.text
    before = snapshot(root)
    shots = f"product-viewer-{request.node.callspec.id}"
    with browsing(chromium, product, "/notebooks/", shots, expected=VIEWER_REFUSALS) as flow:
        page = flow.page
        page.goto(f"{product.url}/signin?next=/notebooks/lab/tree/report.ipynb")
        page.locator("input[name=username]").fill("alan")
        page.locator("input[name=password]").fill("nala")
        page.locator("button", has_text="Sign in").click()
        page.wait_for_selector(".jp-NotebookPanel")
        flow.wait_kernel("Idle")
        panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
        panel.locator("[data-jp-item-name='read-only-indicator']").get_by_text("notebook is read-only").wait_for()
        flow.shot("viewer-opened-read-only")

        panel.locator(".jp-Cell").first.locator(".jp-InputArea-prompt").click()
        page.keyboard.press("Shift+Enter")
        refusal = flow.cell_output(0).filter(has_text=re.compile("PermissionError"))
        refusal.wait_for()
        assert "not run code" in refusal.inner_text()
        flow.shot("run-refused")

        page.keyboard.press("Control+s")  # a keyboard save of a read-only document: JupyterLab says so
        page.get_by_text(re.compile(r"report\.ipynb is read-only")).first.wait_for()
        flow.shot("save-refused")
    assert snapshot(root) == before
    assert not (root / "viewer-was-here.txt").exists()
