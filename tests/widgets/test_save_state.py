"""widgets.save_state: saving a notebook with a live kernel session writes its widget state."""

from __future__ import annotations

from typing import Any

import httpx
import nbformat

from carme_widgets.state import STATE_MIMETYPE
from tests.widgets.conftest import LoopProbe

WIDGETS_SETTINGS = {"widgets.save_state": True}


def save_notebook(client: httpx.Client, path: str) -> dict[str, Any]:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import ipywidgets as w")])
    response = client.put(f"/api/contents/{path}", json={"type": "notebook", "format": "json", "content": nb})
    assert response.status_code in (200, 201), response.text
    response = client.get(f"/api/contents/{path}")
    assert response.status_code == 200, response.text
    return response.json()["content"]  # type: ignore[no-any-return]


async def test_hook_carme_before_save_writes_widget_state(probe: LoopProbe, kernel_id: str, client: httpx.Client) -> None:
    response = client.post("/api/sessions", json={"path": "live.ipynb", "type": "notebook", "name": "live.ipynb",
                                                  "kernel": {"id": kernel_id}})
    assert response.status_code == 201, response.text
    assert response.json()["kernel"]["id"] == kernel_id
    model_id = (await probe.execute(kernel_id, "import ipywidgets as w\ns = w.IntSlider(value=42)\n"
                                                "print(s.model_id)")).strip()

    saved = save_notebook(client, "live.ipynb")
    state = saved["metadata"]["widgets"][STATE_MIMETYPE]
    assert state["version_major"] == 2 and state["version_minor"] == 0
    assert state["state"][model_id]["model_name"] == "IntSliderModel"
    assert state["state"][model_id]["state"]["value"] == 42
    nbformat.validate(nbformat.from_dict(saved))

    # A notebook without a session, and a plain file, are saved as sent.
    assert "widgets" not in save_notebook(client, "other.ipynb")["metadata"]
    response = client.put("/api/contents/plain.txt", json={"type": "file", "format": "text", "content": "hi"})
    assert response.status_code in (200, 201)
    assert client.get("/api/contents/plain.txt").json()["content"] == "hi"
