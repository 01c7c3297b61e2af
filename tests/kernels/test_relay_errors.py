"""What the relay does when sending to a client fails: a client that went away keeps its messages
for its return; any other failure is logged as an error and closes the websocket with 1011
(never a silent, open websocket). A real kernel; the sinks are small implementations of the
relay's Sink interface."""

from __future__ import annotations

import logging
import uuid

import pytest
import pytest_asyncio

from carme.kernels.kernel import Kernel
from carme.kernels.relay import SinkClosed
from carme.server import Server

from tests.polling import await_until

from .zmqclient import execute

pytestmark = pytest.mark.asyncio(loop_scope="module")


class RecordingSink:
    """Keeps what it is sent; raises ``fail`` on every send when given one."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.frames: list[bytes | str] = []
        self.closed: tuple[int, str] | None = None

    async def send(self, frame: bytes | str) -> None:
        if self.fail is not None:
            raise self.fail
        self.frames.append(frame)

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def kernel(kserver: Server) -> Kernel:
    return await kserver.kernels.start_kernel("python3")


async def test_a_failing_send_is_logged_and_closes_the_websocket_1011(
        kernel: Kernel, kserver: Server, caplog: pytest.LogCaptureFixture) -> None:
    clients = kserver.kernel_websockets.clients_of(kernel)
    sink = RecordingSink(fail=ValueError("cannot encode this"))
    with caplog.at_level(logging.DEBUG, logger="carme.kernels.relay"):
        client = await clients.connect(uuid.uuid4().hex, sink, True)
        try:
            await execute(kernel, "print('to a broken sink')")
            await await_until(lambda: sink.closed, "the websocket closed")
        finally:
            await clients.disconnect(client, sink)
    assert sink.closed == (1011, "internal error")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name == "carme.kernels.relay"]
    assert errors and "cannot encode this" in (errors[0].exc_text or "")
    assert not client.attached


async def test_a_client_gone_keeps_its_messages_for_its_return(kernel: Kernel, kserver: Server) -> None:
    clients = kserver.kernel_websockets.clients_of(kernel)
    session_id = uuid.uuid4().hex
    gone = RecordingSink(fail=SinkClosed("the client went away"))
    client = await clients.connect(session_id, gone, True)
    await execute(kernel, "print('while away')")
    await await_until(lambda: not client.attached, "the relay noticing the client is gone")
    assert gone.closed is None  # nothing to close: it is gone
    back = RecordingSink()
    await clients.connect(session_id, back, True)
    try:
        await await_until(lambda: any(isinstance(f, bytes) and b"while away" in f for f in back.frames),
                          "the output replayed")
    finally:
        await clients.disconnect(client, back)
