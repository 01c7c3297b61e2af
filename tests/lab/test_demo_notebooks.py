"""The demo notebooks (examples/demo, what ./dev serve opens) open clean in JupyterLab: their
kernelspec and language_info are what the kernel reports, so JupyterLab does not rewrite them on
open (the dirty dot on the tab). Real Chromium, real kernels."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request

from carme import create_app, hookimpl
from carme.server import Server
from tests.browser import browsing
from tests.serving import TOKEN, serve

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"
NOTEBOOKS = sorted(path.name for path in DEMO.glob("*.ipynb"))

# Once the kernel's info is in, JupyterLab has applied it (its own handler on the same promise
# was registered first): is the notebook then modified?
DIRTY_AFTER_KERNEL_INFO = """async () => {
    const panel = window.jupyterapp.shell.currentWidget;
    await panel.sessionContext.ready;
    await panel.sessionContext.session.kernel.info;
    await new Promise(resolve => setTimeout(resolve, 0));
    return panel.context.model.dirty;
}"""


class ExposeApp:
    """Page config for this test only: window.jupyterapp, to ask the notebook model."""

    @hookimpl
    def carme_lab_extra_page_config(self, server: Server, request: Request, page_config: dict[str, Any]) -> dict[str, Any]:
        return {"exposeAppInBrowser": True}


def test_there_are_demo_notebooks() -> None:
    assert NOTEBOOKS


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_a_demo_notebook_opens_unmodified(chromium: Any, root: Path, name: str) -> None:
    shutil.copy(DEMO / name, root / name)
    app = create_app(str(root), token=TOKEN, extensions=["lab", "widgets"], plugins=[ExposeApp()])
    with serve(app) as served, browsing(chromium, served, "/", f"demo-{name}") as flow:
        flow.page.goto(f"{served.url}/lab/tree/{name}?token={TOKEN}")
        flow.page.wait_for_selector(".jp-NotebookPanel")
        flow.wait_kernel("Idle")
        assert flow.page.evaluate(DIRTY_AFTER_KERNEL_INFO) is False
        assert flow.page.locator(".lm-TabBar-tab.jp-mod-current.jp-mod-dirty").count() == 0
        flow.shot("opened")
