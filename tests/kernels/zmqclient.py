"""A kernel's client over ZMQ, for tests that talk to a kernel through carme's own kernel API
(``kernel.connect`` and ``kernel.subscribe``) rather than a websocket: the one ZMQ execute helper.

Call these on the event loop the kernel's server runs on.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from carme.kernels.kernel import Kernel
from carme.kernels.message import KernelMessage


class Collector:
    """Subscribes to a kernel's iopub and keeps every message."""

    def __init__(self, kernel: Kernel) -> None:
        self.messages: list[KernelMessage] = []
        self.unsubscribe = kernel.subscribe(self.messages.append)

    def of_type(self, msg_type: str, parent: str | None = None) -> list[KernelMessage]:
        return [m for m in self.messages if m.msg_type == msg_type and (parent is None or m.parent_msg_id == parent)]

    def statuses(self) -> list[str]:
        return [m.content.get("execution_state") for m in self.messages if m.msg_type == "status"]


@dataclass
class Executed:
    """One execute_request: the request, its reply, and its iopub messages up to status idle."""

    request: KernelMessage
    reply: KernelMessage
    iopub: list[KernelMessage]

    @property
    def stdout(self) -> str:
        return "".join(m.content["text"] for m in self.iopub if m.msg_type == "stream" and m.content["name"] == "stdout")

    @property
    def output(self) -> str:
        """stdout, and ``ename: evalue`` of an error, in order."""
        return "".join(m.content["text"] if m.msg_type == "stream" else f"{m.content['ename']}: {m.content['evalue']}"
                       for m in self.iopub if m.msg_type in ("stream", "error"))


def execute_request(kernel: Kernel, code: str, **content: Any) -> KernelMessage:
    return kernel.session.msg("shell", "execute_request", {"code": code, "silent": False, "store_history": False,
                                                            "user_expressions": {}, "allow_stdin": False, **content})


async def execute(kernel: Kernel, code: str, timeout: float = 60.0) -> Executed:
    """Run ``code`` over a new client shell socket; returns once the kernel replied and is idle
    again. A fresh identity each time: a ROUTER ignores a new peer that reuses a live identity."""
    request = execute_request(kernel, code)
    iopub: list[KernelMessage] = []
    idle = asyncio.Event()

    def on_message(msg: KernelMessage) -> None:
        if msg.parent_msg_id == request.msg_id:
            iopub.append(msg)
            if msg.msg_type == "status" and msg.content.get("execution_state") == "idle":
                idle.set()

    unsubscribe = kernel.subscribe(on_message)
    sock = kernel.connect("shell", uuid.uuid4().bytes)
    try:
        await sock.send_multipart(kernel.session.serialize(request))
        reply = await recv_reply(kernel, sock, request.msg_id, timeout)
        await asyncio.wait_for(idle.wait(), timeout)
        return Executed(request, reply, iopub)
    finally:
        unsubscribe()
        sock.close(linger=0)


async def recv_reply(kernel: Kernel, sock: Any, msg_id: str, timeout: float = 60.0) -> KernelMessage:
    """The reply to ``msg_id`` on ``sock`` (a shell or control socket from kernel.connect)."""
    async def read() -> KernelMessage:
        while True:
            msg = kernel.session.deserialize("shell", await sock.recv_multipart())
            if msg is not None and msg.parent_msg_id == msg_id:
                return msg
    return await asyncio.wait_for(read(), timeout)
