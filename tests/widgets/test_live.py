"""Server-held widget state with real ipywidgets in a real kernel, through /api/widgets."""

from __future__ import annotations

import base64
import os
import signal
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.kernels.wsclient import Client, Msg
from tests.polling import await_until
from tests.widgets.conftest import widget_state


def comm_open_of(model_name: str):  # type: ignore[no-untyped-def]
    def match(msg: Msg) -> bool:
        return msg.msg_type == "comm_open" and msg.content["data"]["state"].get("_model_name") == model_name
    return match


def model(client: httpx.Client, kernel_id: str, model_id: str) -> dict[str, Any] | None:
    return widget_state(client, kernel_id)["state"].get(model_id)  # type: ignore[no-any-return]


async def models_where(client: httpx.Client, kernel_id: str,
                       check: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    """The server's widget models of the kernel, once ``check(models)`` holds (the server sees an
    iopub message after the test does)."""
    return await await_until(lambda: widget_state(client, kernel_id)["state"], "the server's widget state", check=check)


async def model_where(client: httpx.Client, kernel_id: str, model_id: str,
                      check: Callable[[Any], Any]) -> dict[str, Any]:
    return await await_until(lambda: model(client, kernel_id, model_id), f"widget {model_id} on the server",
                             check=check)


async def test_slider_state_follows_kernel_and_frontend(client: httpx.Client, kernel_id: str,
                                                        frontend: Client) -> None:
    await frontend.run("import ipywidgets as w\ns = w.IntSlider(value=3)\ndisplay(s)")
    opened = await frontend.wait_for(comm_open_of("IntSliderModel"))
    model_id = opened.content["comm_id"]

    await models_where(client, kernel_id, lambda s: model_id in s)
    state = widget_state(client, kernel_id)
    assert state["version_major"] == 2 and state["version_minor"] == 0
    slider = state["state"][model_id]
    assert slider["model_name"] == "IntSliderModel"
    assert slider["model_module"] == "@jupyter-widgets/controls"
    assert slider["model_module_version"] == opened.content["data"]["state"]["_model_module_version"]
    assert slider["state"]["value"] == 3
    # The slider's layout and style are models too.
    assert slider["state"]["layout"].removeprefix("IPY_MODEL_") in state["state"]

    # Kernel -> frontend (iopub update).
    await frontend.run("s.value = 42")
    await model_where(client, kernel_id, model_id, lambda m: m["state"]["value"] == 42)

    # Frontend -> kernel (shell update), as JupyterLab sends it when the slider is dragged.
    await frontend.comm_msg(model_id, {"method": "update", "state": {"value": 7}, "buffer_paths": []})
    await model_where(client, kernel_id, model_id, lambda m: m["state"]["value"] == 7)
    assert (await frontend.run("print(s.value)")).strip() == "7"

    # The state is the server's: it outlives the frontend's connection.
    await frontend.close()
    assert model(client, kernel_id, model_id)["state"]["value"] == 7  # type: ignore[index]


async def test_frontend_updates_are_seen_without_echo(client: httpx.Client, kernel_id: str,
                                                      frontend: Client) -> None:
    """With echo_update off (ipywidgets 7 kernels, JUPYTER_WIDGETS_ECHO=0), the kernel never
    repeats a frontend's update on iopub: the server sees it on its way to the kernel."""
    await frontend.run("import ipywidgets as w\nimport ipywidgets.widgets.widget as ww\n"
                           "quiet = w.FloatSlider(value=0.5)\nww.JUPYTER_WIDGETS_ECHO = False")
    try:
        model_id = (await frontend.wait_for(comm_open_of("FloatSliderModel"))).content["comm_id"]
        update = await frontend.comm_msg(model_id, {"method": "update", "state": {"value": 2.5}, "buffer_paths": []})
        await model_where(client, kernel_id, model_id, lambda m: m["state"]["value"] == 2.5)
        assert (await frontend.run("print(quiet.value)")).strip() == "2.5"
        assert not [m for m in frontend.received if m.msg_type == "comm_msg" and m.parent_id == update]
    finally:
        await frontend.run("ww.JUPYTER_WIDGETS_ECHO = True")


@pytest.mark.parametrize("v1", [True, False], ids=["v1", "legacy"])
async def test_binary_buffers_round_trip(client: httpx.Client, kernel_id: str, served: Any, v1: bool) -> None:
    frontend = await Client.open(served.ws_url, kernel_id, v1=v1)
    try:
        await binary_round_trip(client, kernel_id, frontend)
    finally:
        await frontend.close()


async def binary_round_trip(client: httpx.Client, kernel_id: str, frontend: Client) -> None:
    await frontend.run("import ipywidgets as w\nimg = w.Image(value=b'\\x89PNG\\x00first', format='png')")
    opened = await frontend.wait_for(comm_open_of("ImageModel"))
    model_id = opened.content["comm_id"]
    assert opened.buffers == [b"\x89PNG\x00first"]

    entry = await model_where(client, kernel_id, model_id, lambda m: m is not None)
    assert "value" not in entry["state"]
    assert entry["buffers"] == [{"path": ["value"], "encoding": "base64",
                                 "data": base64.b64encode(b"\x89PNG\x00first").decode()}]

    # Kernel-side change of a bytes trait.
    await frontend.run("img.value = b'\\x00\\x01second\\xff'")
    second = base64.b64encode(b"\x00\x01second\xff").decode()
    await model_where(client, kernel_id, model_id, lambda m: m["buffers"][0]["data"] == second)

    # Frontend-side change: the buffer rides as a binary part of the websocket frame.
    payload = bytes(range(256))
    await frontend.comm_msg(model_id, {"method": "update", "state": {}, "buffer_paths": [["value"]]}, [payload])
    await model_where(client, kernel_id, model_id,
                      lambda m: m["buffers"][0]["data"] == base64.b64encode(payload).decode())
    assert (await frontend.run("print(img.value == bytes(range(256)))")).strip() == "True"


async def test_closed_widget_disappears(client: httpx.Client, kernel_id: str, frontend: Client) -> None:
    await frontend.run("import ipywidgets as w\nkeep = w.Checkbox(value=True)\ngone = w.Text(value='x')")
    kept = (await frontend.wait_for(comm_open_of("CheckboxModel"))).content["comm_id"]
    closed = (await frontend.wait_for(comm_open_of("TextModel"))).content["comm_id"]
    await models_where(client, kernel_id, lambda s: kept in s and closed in s)

    await frontend.run("gone.close()")
    await frontend.wait_for(lambda m: m.msg_type == "comm_close" and m.content["comm_id"] == closed)
    state = await models_where(client, kernel_id, lambda s: closed not in s)
    assert state[kept]["state"]["value"] is True


async def test_restart_clears_state(client: httpx.Client, kernel_id: str, frontend: Client) -> None:
    await frontend.run("import ipywidgets as w\ns = w.IntSlider()")
    model_id = (await frontend.wait_for(comm_open_of("IntSliderModel"))).content["comm_id"]
    await models_where(client, kernel_id, lambda s: model_id in s)

    response = client.post(f"/api/kernels/{kernel_id}/restart")
    assert response.status_code == 200, response.text
    assert widget_state(client, kernel_id)["state"] == {}

    # The restarted kernel is tracked again.
    await frontend.run("import ipywidgets as w\nt = w.IntSlider(value=5)")
    new = await frontend.wait_for(lambda m: comm_open_of("IntSliderModel")(m) and m.content["comm_id"] != model_id)
    await models_where(client, kernel_id, lambda s: list(s) and new.content["comm_id"] in s)


def test_unknown_kernel_is_404_and_auth_is_required(client: httpx.Client, served: Any) -> None:
    response = client.get("/api/widgets/no-such-kernel")
    assert response.status_code == 404
    assert "no-such-kernel" in response.json()["message"]
    anonymous = httpx.get(f"{served.url}/api/widgets/no-such-kernel")
    assert anonymous.status_code == 403


async def test_malformed_comm_messages_change_nothing(client: httpx.Client, kernel_id: str, frontend: Client) -> None:
    """A frontend sending broken comm messages: the server's state stays as it was, later valid
    updates still apply, and the connection keeps working."""
    await frontend.run("import ipywidgets as w\nsturdy = w.IntSlider(value=1)")
    model_id = (await frontend.wait_for(comm_open_of("IntSliderModel"))).content["comm_id"]
    before = await model_where(client, kernel_id, model_id, lambda m: m is not None)
    broken: list[tuple[str, dict[str, Any], list[bytes]]] = [
        ("comm_msg", {"comm_id": model_id, "data": "not an object"}, []),
        ("comm_msg", {"comm_id": model_id, "data": {"method": "update", "state": [1, 2]}}, []),
        ("comm_msg", {"comm_id": model_id, "data": {"method": "update", "state": {}, "buffer_paths": [["value"]]}},
         []),  # a buffer path without its buffer
        ("comm_msg", {"comm_id": model_id, "data": {"method": "update", "state": {},
                                                    "buffer_paths": [["missing", "deep"]]}}, [b"x"]),
        ("comm_msg", {"comm_id": 5, "data": {"method": "update", "state": {"value": 6}}}, []),
        ("comm_open", {"target_name": "jupyter.widget", "data": {"state": {"_model_name": "X"}}}, []),
        ("comm_close", {"data": {}}, []),
    ]
    for msg_type, content, buffers in broken:
        await frontend.send("shell", msg_type, content, buffers)
    assert (await frontend.run("print(sturdy.value)")).strip() == "1"  # the kernel ignored them too
    assert model(client, kernel_id, model_id) == before
    await frontend.comm_msg(model_id, {"method": "update", "state": {"value": 9}, "buffer_paths": []})
    await model_where(client, kernel_id, model_id, lambda m: m["state"]["value"] == 9)


async def test_automatic_restart_clears_state_and_tracks_the_new_kernel(client: httpx.Client, kernel_id: str,
                                                                         frontend: Client, served: Any) -> None:
    """kill -9: the kernel restarts by itself; the widgets of the dead process are gone from the
    server's state and widgets made after the restart are tracked."""
    await frontend.run("import ipywidgets as w\nold = w.IntSlider(value=3)")
    old = (await frontend.wait_for(comm_open_of("IntSliderModel"))).content["comm_id"]
    await models_where(client, kernel_id, lambda s: old in s)
    kernel = served.app.server.kernels.get(kernel_id)
    os.kill(kernel.pid, signal.SIGKILL)
    await frontend.until(lambda m: m.msg_type == "status" and m.content["execution_state"] == "restarting")
    await await_until(lambda: kernel.execution_state == "idle", "the kernel to be back")
    assert old not in widget_state(client, kernel_id)["state"]
    await frontend.run("import ipywidgets as w\nnew = w.IntSlider(value=4)")
    new = await frontend.wait_for(lambda m: comm_open_of("IntSliderModel")(m) and m.content["comm_id"] != old)
    state = await models_where(client, kernel_id, lambda s: new.content["comm_id"] in s)
    assert old not in state and state[new.content["comm_id"]]["state"]["value"] == 4


async def test_a_page_loading_while_the_kernel_is_busy_gets_the_widgets_at_once(
        client: httpx.Client, kernel_id: str, served: Any, frontend: Client) -> None:
    """ipywidgets' control comm: a page asks for every widget's state on load; while a long cell
    runs, the server answers that page from its copy (the kernel's shell is queued behind the cell)."""
    await frontend.run("import ipywidgets as w\nbusy_slider = w.IntSlider(value=5)\n"
                       "busy_img = w.Image(value=b'\\x89PNG\\x00busy', format='png')")
    slider_id = (await frontend.wait_for(comm_open_of("IntSliderModel"))).content["comm_id"]
    img_id = (await frontend.wait_for(comm_open_of("ImageModel"))).content["comm_id"]
    await models_where(client, kernel_id, lambda s: slider_id in s and img_id in s)
    running = await frontend.send("shell", "execute_request", {
        "code": "import time\nprint('running', flush=True)\nfor _ in range(600): time.sleep(0.1)",
        "silent": False, "store_history": False, "user_expressions": {}, "allow_stdin": False})
    # In the cell, not only "busy": ipykernel publishes busy before it lets SIGINT in for the cell,
    # and an interrupt between the two is ignored (the cell would then run its full minute).
    await frontend.wait_for(lambda m: m.msg_type == "stream" and m.parent_id == running)
    page = await Client.open(served.ws_url, kernel_id)
    try:
        control = "control-" + os.urandom(4).hex()
        await page.send("shell", "comm_open", {"comm_id": control, "target_name": "jupyter.widget.control",
                                               "data": {}})
        await page.comm_msg(control, {"method": "request_states"})
        answer = await page.wait_for(lambda m: m.msg_type == "comm_msg" and m.content["comm_id"] == control)
        assert client.get(f"/api/kernels/{kernel_id}").json()["execution_state"] == "busy"  # still in the cell
        data = answer.content["data"]
        assert data["method"] == "update_states"
        assert data["states"][slider_id]["model_name"] == "IntSliderModel"
        assert data["states"][slider_id]["state"]["value"] == 5
        assert data["buffer_paths"] == [[img_id, "state", "value"]]
        assert answer.buffers == [b"\x89PNG\x00busy"]
        # only the asking page: the other client got no such answer
        assert not [m for m in frontend.received if m.msg_type == "comm_msg" and m.content.get("comm_id") == control]
    finally:
        await page.close()
        assert client.post(f"/api/kernels/{kernel_id}/interrupt").status_code == 204
        await frontend.wait_for(lambda m: m.msg_type == "status" and m.parent_id == running
                                and m.content["execution_state"] == "idle")
