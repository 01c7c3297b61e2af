"""Dashboards end to end in Chromium: the real extension, the built client, real kernels.

One notebook with a marker computed at run time, an HTML output, a markdown heading, a
matplotlib PNG, an IntSlider whose observer updates an HTML widget in the kernel, and a figure of
ipympl (a third-party widget library installed as a prebuilt labextension). Served in app mode,
inside a carme that also serves JupyterLab, and under a base URL. Then visits: three visitors,
three kernels, freed after the grace period once their tabs close; a reload gets the same kernel
and its widgets back.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from carme import create_app
from tests.browser import browsing
from tests.dashboards.site import SENTINEL, kernel_ids, write_notebook
from tests.polling import wait_until
from tests.serving import TOKEN, Served, serve

CELLS: list[str | tuple[str, str]] = [
    ("markdown", "# Dashboard heading\n\nThe notebook's *prose*."),
    "marker = 'marker-%d' % (6 * 7)\nprint(marker)",
    "from IPython.display import HTML\nHTML('<b id=\"html-output\">bold output</b>')",
    "import matplotlib.pyplot as plt\nplt.figure(figsize=(2, 2))\nplt.plot([1, 3, 2])\nplt.show()",
    "import ipywidgets as w\n"
    "slider = w.IntSlider(value=3, min=0, max=10, description='n')\n"
    "square = w.HTML(value='square=9')\n"
    "def on_value(change):\n"
    "    square.value = f\"square={change['new'] ** 2}\"\n"
    "slider.observe(on_value, names='value')\n"
    "w.VBox([slider, square])",
    "%matplotlib widget\nfig, ax = plt.subplots(figsize=(3, 2))\nax.plot([3, 1, 2])\nfig.canvas",
]


def dashboard_app(root: Path, mode: str, **settings: Any) -> tuple[Any, str]:
    """The app of ``mode`` and the URL path of the notebook's page in it."""
    values = {f"dashboards.{key}": value for key, value in settings.items()}
    if mode == "app":
        values |= {"dashboards.app_mode": True, "dashboards.notebook": "nb.ipynb"}
        return create_app(str(root), token=TOKEN, extensions=["dashboards", "widgets"], config_files=False,
                          settings=values), "/"
    base = "/user/me/" if mode == "base_url" else "/"
    extensions = ["dashboards", "widgets"] + (["lab"] if mode == "serve" else [])
    return create_app(str(root), token=TOKEN, extensions=extensions, config_files=False, base_url=base,
                      settings=values), base + "dashboards/render/nb.ipynb"


@pytest.fixture
def notebook(root: Path) -> Path:
    return write_notebook(root / "nb.ipynb", *CELLS)


class Wire:
    """Every request and websocket frame a page makes, and the documents it got."""

    def __init__(self, page: Any) -> None:
        self.requests: list[str] = []
        self.frames: list[str] = []
        self.documents: list[str] = []
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("websocket", self._socket)
        page.on("response", self._response)

    def _socket(self, ws: Any) -> None:
        self.requests.append(ws.url)
        for event in ("framereceived", "framesent"):
            ws.on(event, lambda payload: self.frames.append(payload if isinstance(payload, str)
                                                          else payload.decode("utf-8", "replace")))

    def _response(self, response: Any) -> None:
        if response.request.resource_type == "document":
            self.documents.append(response.text())


@pytest.mark.parametrize("mode", ["app", "serve", "base_url"])
def test_the_dashboard_in_chromium(chromium: Any, notebook: Path, mode: str) -> None:
    app, path = dashboard_app(notebook.parent, mode)
    with serve(app) as served, browsing(chromium, served, "/", f"dashboard-{mode}") as flow:
        page = flow.page
        wire = Wire(page)
        page.goto(f"{served.url}{path}?token={TOKEN}")
        cells = page.locator("#carme-cells")
        cells.get_by_text("marker-42").wait_for()
        assert cells.locator("h1").inner_text() == "Dashboard heading"
        assert cells.locator("#html-output").inner_text() == "bold output"
        assert cells.locator("img[src^='data:image/png']").count() == 1
        page.locator("body[data-carme-run='ok']").wait_for()
        page.locator("#carme-kernel-status[data-state='connected']").wait_for()

        slider = page.locator(".widget-slider")
        square = page.locator(".widget-html")
        square.get_by_text("square=9").wait_for()
        readout = slider.locator(".widget-readout")
        readout.click()
        page.keyboard.press("Control+A")
        page.keyboard.type("7")
        page.keyboard.press("Enter")
        square.get_by_text("square=49").wait_for()
        slider.locator(".noUi-handle").focus()
        page.keyboard.press("ArrowRight")
        readout.filter(has_text=re.compile(r"^8$")).wait_for()
        square.get_by_text("square=64").wait_for()

        # ipympl's figure: its labextension loaded from the server, the image through the kernel.
        page.locator(".jupyter-matplotlib canvas").first.wait_for()
        flow.shot("rendered")

        assert SENTINEL not in page.content()
        documents = "".join(wire.documents)
        assert "marker-42" in documents and SENTINEL not in documents
        assert wire.frames and not [frame for frame in wire.frames if SENTINEL in frame]
        origin, ws_origin = served.url + "/", served.ws_url + "/"
        assert [url for url in wire.requests if not url.startswith((origin, ws_origin, "data:", "blob:"))] == []
        assert any("/dashboards/labextensions/jupyter-matplotlib/" in url for url in wire.requests)
        if mode == "app":
            token = {"Authorization": f"token {TOKEN}"}
            assert page.request.get(f"{served.url}/lab", headers=token, max_redirects=0).status == 302  # to files
            assert page.request.get(f"{served.url}/lab", headers=token).status == 404
            assert page.request.put(f"{served.url}/api/contents/x.txt", data="{}", headers=token).status == 404


def test_three_visitors_three_kernels_freed_after_the_grace_period(chromium: Any, notebook: Path) -> None:
    app, path = dashboard_app(notebook.parent, "app", grace_period=0.5)
    with serve(app) as served:
        contexts = [chromium.new_context() for _ in range(3)]
        try:
            ids = set()
            for context in contexts:
                page = context.new_page()
                page.goto(f"{served.url}{path}?token={TOKEN}")
                page.locator("#carme-kernel-status[data-state='connected']").wait_for()
                ids.add(page.evaluate("window.carmeDashboard.config.kernelId"))
            assert len(ids) == 3 and kernel_ids(served) == ids
        finally:
            for context in contexts:
                context.close()
        wait_until(lambda: not kernel_ids(served), what="the kernels of the closed tabs to go")


def test_a_reload_reconnects_to_the_same_kernel_and_widgets(chromium: Any, notebook: Path) -> None:
    app, path = dashboard_app(notebook.parent, "app")
    with serve(app) as served, browsing(chromium, served, "/", "dashboard-reload") as flow:
        page = flow.page
        page.goto(f"{served.url}{path}?token={TOKEN}")
        page.locator("body[data-carme-run='ok']").wait_for()
        kernel_id = page.evaluate("window.carmeDashboard.config.kernelId")
        page.locator(".widget-html").get_by_text("square=9").wait_for()
        page.locator(".widget-slider .noUi-handle").focus()
        page.keyboard.press("ArrowRight")
        page.locator(".widget-html").get_by_text("square=16").wait_for()
        page.reload()
        page.locator("#carme-kernel-status[data-state='connected']").wait_for()
        assert page.evaluate("window.carmeDashboard.config.kernelId") == kernel_id
        # The widgets come back as the kernel has them, not as the notebook first made them.
        page.locator(".widget-slider .widget-readout").filter(has_text=re.compile(r"^4$")).wait_for()
        page.locator(".widget-html").get_by_text("square=16").wait_for()
        assert kernel_ids(served) == {kernel_id}
        flow.shot("after-reload")

