"""The Python API of the widgets service: server-side comms with a real kernel, set_state."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from carme_widgets import CommClosedError, CommMessage, UnknownKernelError
from tests.polling import await_until
from tests.widgets.conftest import LoopProbe

KERNEL_ECHO_TARGET = """
log = {"open": None, "closed": False}
def _target(comm, msg):
    log["open"] = msg["content"]["data"]
    comm.on_msg(lambda m: comm.send({"echo": m["content"]["data"]}, buffers=m["buffers"]))
    def _closed(m):
        log["closed"] = True
    comm.on_close(_closed)
get_ipython().kernel.comm_manager.register_target("carme.test.echo", _target)
"""


async def kernel_value(probe: LoopProbe, kernel_id: str, expr: str, expected: str) -> None:
    """Wait until ``print(expr)`` in the kernel prints ``expected``."""
    await await_until(lambda: probe.execute(kernel_id, f"print({expr})"), f"{expr} to be {expected} in the kernel",
                      check=lambda out: out.strip() == expected)


async def send_then_recv(comm: Any, data: dict[str, Any], buffers: list[bytes]) -> CommMessage:
    """Send on ``comm`` and pull the kernel's answer. recv queues only from its first call, so it
    is started before the send: the answer may come back before a recv called afterwards."""
    answer = asyncio.ensure_future(comm.recv(timeout=30))  # runs (and makes its queue) before any reader
    await comm.send(data, buffers=buffers)
    return await answer


async def test_server_opens_a_comm_to_a_kernel_target(probe: LoopProbe, kernel_id: str) -> None:
    await probe.execute(kernel_id, KERNEL_ECHO_TARGET)
    widgets = probe.widgets
    comm = await probe.call(widgets.open_comm(kernel_id, "carme.test.echo", data={"hello": "kernel"}))
    assert widgets.comm(kernel_id, comm.comm_id) is comm
    reply = await probe.call(send_then_recv(comm, {"n": 2}, [b"\x00binary\xff"]))
    assert reply.data == {"echo": {"n": 2}}
    assert reply.buffers == [b"\x00binary\xff"]
    await kernel_value(probe, kernel_id, "log['open']", "{'hello': 'kernel'}")

    await probe.call(comm.close({"bye": True}))
    assert comm.closed and widgets.comm(kernel_id, comm.comm_id) is None
    await kernel_value(probe, kernel_id, "log['closed']", "True")
    with pytest.raises(CommClosedError):
        await probe.call(comm.send({"late": 1}))


async def test_kernel_opens_a_comm_to_a_server_target(probe: LoopProbe, kernel_id: str) -> None:
    opened: list[dict[str, Any]] = []
    closed: list[Any] = []

    async def handler(comm: Any, message: CommMessage) -> None:
        opened.append(message.data)

        async def on_msg(msg: CommMessage) -> None:
            await comm.send({"got": msg.data})

        comm.on_msg(on_msg)
        comm.on_close(lambda msg: closed.append(msg.data if msg else None))

    unregister = probe.widgets.register_target("carme.test.server", handler)
    await probe.execute(kernel_id, "\n".join([
        "from comm import create_comm",
        "replies = []",
        "c = create_comm(target_name='carme.test.server', data={'from': 'kernel'})",
        "c.on_msg(lambda m: replies.append(m['content']['data']))",
        "c.send({'x': 1})",
    ]))
    await kernel_value(probe, kernel_id, "replies", "[{'got': {'x': 1}}]")
    assert opened == [{"from": "kernel"}]
    await probe.execute(kernel_id, "c.close({'done': 1})")
    await await_until(lambda: closed, "the server comm to see comm_close")
    assert closed == [{"done": 1}]

    unregister()
    assert "carme.test.server" not in probe.widgets.targets


async def test_restart_closes_server_comms(probe: LoopProbe, kernel_id: str, client: Any) -> None:
    await probe.execute(kernel_id, KERNEL_ECHO_TARGET)
    comm = await probe.call(probe.widgets.open_comm(kernel_id, "carme.test.echo"))
    assert client.post(f"/api/kernels/{kernel_id}/restart").status_code == 200
    assert comm.closed
    with pytest.raises(CommClosedError):
        await probe.call(comm.recv(timeout=5))


async def test_set_state_updates_kernel_and_store(probe: LoopProbe, kernel_id: str) -> None:
    model_id = (await probe.execute(kernel_id, "import ipywidgets as w\ns = w.IntSlider()\nprint(s.model_id)")).strip()
    await probe.call(probe.widgets.set_state(kernel_id, model_id, {"value": 11}))
    await kernel_value(probe, kernel_id, "s.value", "11")
    assert probe.widgets.store(kernel_id).get(model_id).state["value"] == 11

    image_id = (await probe.execute(kernel_id, "img = w.Image()\nprint(img.model_id)")).strip()
    await probe.call(probe.widgets.set_state(kernel_id, image_id, {"value": b"\x89PNG"}))
    await kernel_value(probe, kernel_id, "bytes(img.value)", "b'\\x89PNG'")
    exported = probe.widgets.state(kernel_id)["state"][image_id]
    assert exported["buffers"] == [{"path": ["value"], "data": "iVBORw==", "encoding": "base64"}]

    with pytest.raises(KeyError):
        await probe.call(probe.widgets.set_state(kernel_id, "no-such-model", {"value": 1}))


async def test_bad_calls_are_refused(probe: LoopProbe, kernel_id: str) -> None:
    with pytest.raises(UnknownKernelError):
        await probe.call(probe.widgets.open_comm("no-such-kernel", "x"))
    with pytest.raises(UnknownKernelError):
        probe.widgets.state("no-such-kernel")
    with pytest.raises(ValueError, match="frontends"):
        probe.widgets.register_target("jupyter.widget", lambda comm, msg: None)
    probe.widgets.register_target("carme.test.once", lambda comm, msg: None)
    with pytest.raises(ValueError, match="already"):
        probe.widgets.register_target("carme.test.once", lambda comm, msg: None)


def test_hook_carme_on_kernel_started_attaches_widgets(probe: LoopProbe, kernel_id: str, client: Any) -> None:
    assert kernel_id in probe.widgets.kernels
    assert client.get(f"/api/widgets/{kernel_id}").status_code == 200


def test_hook_carme_on_kernel_stopped_detaches_widgets(probe: LoopProbe, client: Any) -> None:
    response = client.post("/api/kernels", json={"name": "python3"})
    assert response.status_code == 201, response.text
    other = response.json()["id"]
    assert other in probe.widgets.kernels
    assert client.delete(f"/api/kernels/{other}").status_code == 204
    assert other not in probe.widgets.kernels
    assert client.get(f"/api/widgets/{other}").status_code == 404


async def test_save_state_is_off_by_default(probe: LoopProbe, kernel_id: str, client: Any) -> None:
    await probe.execute(kernel_id, "import ipywidgets as w\nkept = w.IntSlider()")
    assert probe.widgets.state(kernel_id)["state"]  # there is state that could be saved
    response = client.post("/api/sessions", json={"path": "off.ipynb", "type": "notebook", "kernel": {"id": kernel_id}})
    assert response.status_code == 201, response.text
    nb = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    assert client.put("/api/contents/off.ipynb", json={"type": "notebook", "content": nb}).status_code in (200, 201)
    assert "widgets" not in client.get("/api/contents/off.ipynb").json()["content"]["metadata"]
