"""Widgets answer while a later cell runs (``widget_subshells``): a slider's change sent by the
page on its subshell runs the slider's observer at once, though the notebook's next cell still
keeps the kernel's main shell busy."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.dashboards.site import cells, dashboards, gate_code, http, page, write_notebook
from tests.dashboards.test_visits import visitor_socket

WIDGETS = ("import ipywidgets as w\n"
           "slider = w.IntSlider(value=3)\n"
           "html = w.HTML('square=9')\n"
           "slider.observe(lambda change: setattr(html, 'value', f\"square={change['new'] ** 2}\"), 'value')\n"
           "display(slider, html)")


async def test_the_observer_runs_while_the_next_cell_runs(root: Path) -> None:
    gate = root.parent / "go"
    write_notebook(root / "nb.ipynb", WIDGETS, gate_code(gate), "print('done')")
    with dashboards(root, widget_subshells=True) as served, http(served) as client, \
            page(client, "dashboards/render/nb.ipynb") as streamed:
        kernel_id = str(streamed.config()["kernelId"])
        streamed.until(lambda text: 'data-done="1"' in text)  # the widgets' cell ran; the gate cell runs
        slider = re.findall(r'data-model-id="([^"]+)"', cells(streamed.text)[0])[0]
        socket = await visitor_socket(served, client, kernel_id)
        try:
            made = await socket.send("control", "create_subshell_request", {})
            reply = await socket.wait_for(lambda m: m.parent_id == made and m.msg_type == "create_subshell_reply")
            change = socket.message("comm_msg", {"comm_id": slider, "data": {
                "method": "update", "state": {"value": 7}, "buffer_paths": []}})
            change["header"]["subshell_id"] = reply.content["subshell_id"]  # as JupyterLab sends it
            await socket.send_raw("shell", change, [])
            # The gate stays shut: the observer's update can only come from the page's subshell.
            update = await socket.wait_for(lambda m: m.msg_type == "comm_msg"
                                           and m.content["data"].get("state", {}).get("value") == "square=49")
            assert update.parent_header["subshell_id"] == reply.content["subshell_id"]
            assert 'data-done="2"' not in streamed.text
        finally:
            gate.touch()
            await socket.close()
        assert "done" in cells(streamed.finish())[2]
