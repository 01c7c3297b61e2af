"""ipywidgets in the real JupyterLab on carme, in the Debian Chromium: the widget manager comes
from jupyterlab_widgets (a federated labextension), the comm messages go through carme's kernel
websocket, and the server's widget state follows what the page shows."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import nbformat

from carme import create_app
from tests.browser import ARTIFACTS, browsing, open_lab
from tests.serving import TOKEN, serve

SLIDER_CELL = "import ipywidgets as w\ns = w.IntSlider(description='answer')\ns"


def test_slider_renders_and_follows_the_kernel(chromium: Any, root: Path) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(SLIDER_CELL)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, root / "slider.ipynb")
    app = create_app(str(root), token=TOKEN, extensions=["lab", "widgets"], settings={"widgets.save_state": True})
    shutil.rmtree(ARTIFACTS / "widgets", ignore_errors=True)
    with serve(app) as running, browsing(chromium, running, "/", "widgets") as flow:
        page = flow.page
        open_lab(flow)
        page.locator(".jp-DirListing-item[title^='Name: slider.ipynb']").dblclick()
        page.wait_for_selector(".jp-NotebookPanel")
        flow.wait_kernel("Idle")

        page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").first.click()
        page.keyboard.press("Shift+Enter")
        slider = flow.cell_output(0).locator(".widget-slider")
        slider.wait_for()
        assert slider.locator(".widget-label").inner_text() == "answer"
        slider.locator(".widget-readout").filter(has_text=re.compile(r"^0$")).wait_for()
        flow.shot("slider")

        flow.run_in_new_cell("s.value = 42")
        slider.locator(".widget-readout").filter(has_text=re.compile(r"^42$")).wait_for()
        flow.shot("slider-42")

        # The server holds the same state the page shows.
        (session,) = flow.api.get("api/sessions").json()
        widgets_url = f"api/widgets/{session['kernel']['id']}"
        sliders = [m for m in flow.api.get(widgets_url).json()["state"].values() if m["model_name"] == "IntSliderModel"]
        assert [m["state"]["value"] for m in sliders] == [42]
        assert sliders[0]["state"]["description"] == "answer"

        # The other way: typing into the slider's readout updates the kernel, and the server.
        readout = slider.locator(".widget-readout")
        readout.fill("7")
        readout.press("Enter")
        page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").last.click()
        flow.run_in_new_cell("print(s.value * 2)")
        flow.cell_output(2).filter(has_text=re.compile(r"^\s*14\s*$")).wait_for()
        state = flow.api.get(widgets_url).json()["state"]
        assert [m["state"]["value"] for m in state.values() if m["model_name"] == "IntSliderModel"] == [7]
        flow.shot("slider-7")

        # Save: the server puts the live widget state into the notebook (widgets.save_state).
        page.keyboard.press("Control+s")
        page.wait_for_selector(".lm-TabBar-tab.jp-mod-current:not(.jp-mod-dirty)")
        saved = flow.api.get("api/contents/slider.ipynb").json()["content"]
        saved_state = saved["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
        assert [m["state"]["value"] for m in saved_state.values() if m["model_name"] == "IntSliderModel"] == [7]

        # Reload: the page's widget manager restores every model (kernel state through carme's
        # websocket, saved state from the notebook) and the view shows the value again.
        page.reload()
        page.wait_for_selector(".jp-NotebookPanel")
        flow.cell_output(0).locator(".widget-slider .widget-readout").filter(has_text=re.compile(r"^7$")).wait_for()
        flow.shot("reloaded")
