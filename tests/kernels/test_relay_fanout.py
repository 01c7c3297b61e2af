"""iopub is read once per kernel and queued per client: a client whose websocket does not take
its messages holds up no other client, loses nothing, and gets everything in order once it
reads again; a sink that can hold frames gets each batch of the kernel's messages held and then
flushed. A real kernel; the sinks are small implementations of the relay's Sink interface."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest
import pytest_asyncio

from carme.kernels.frames import decode_v1
from carme.kernels.kernel import Kernel
from carme.server import Server

from tests.polling import await_until

from .zmqclient import execute

pytestmark = pytest.mark.asyncio(loop_scope="module")

COUNT = 300
CODE = f"for i in range({COUNT}):\n    print(f'line {{i}}', flush=True)"


class GatedSink:
    """Records frames; while ``gate`` is clear every send waits (a client that does not read)."""

    def __init__(self, open_: bool = True) -> None:
        self.gate = asyncio.Event()
        if open_:
            self.gate.set()
        self.frames: list[bytes] = []

    async def send(self, frame: bytes | str) -> None:
        await self.gate.wait()
        assert isinstance(frame, bytes)
        self.frames.append(frame)

    async def close(self, code: int, reason: str) -> None:
        self.gate.set()

    def lines(self) -> list[str]:
        """The stdout text received, line by line, in arrival order."""
        text = ""
        for frame in self.frames:
            channel, parts = decode_v1(frame)
            if channel == "iopub" and b'"stream"' in parts[0]:
                text += orjson.loads(parts[3])["text"]
        return [line for line in text.splitlines() if line.startswith("line ")]


class HoldingSink(GatedSink):
    """Takes frames at once (``send_nowait``) and holds those sent with ``hold`` until ``flush``:
    only written frames count as received."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[bytes] = []
        self.holds = 0  # frames the relay asked to hold
        self.flushes = 0

    def send_nowait(self, frame: bytes | str, hold: bool = False) -> bool:
        assert isinstance(frame, bytes)
        if hold:
            self.holds += 1
            self.held.append(frame)
        else:
            self.flush()
            self.frames.append(frame)
        return True

    def flush(self) -> None:
        self.flushes += bool(self.held)
        self.frames += self.held
        self.held = []

    async def send(self, frame: bytes | str) -> None:
        self.flush()
        await super().send(frame)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def kernel(kserver: Server) -> Kernel:
    return await kserver.kernels.start_kernel("python3")


async def test_a_stuck_client_holds_up_no_other_and_loses_nothing(kernel: Kernel, kserver: Server) -> None:
    clients = kserver.kernel_websockets.clients_of(kernel)
    stuck, reading = GatedSink(open_=False), GatedSink()
    first = await clients.connect(uuid.uuid4().hex, stuck, True)
    second = await clients.connect(uuid.uuid4().hex, reading, True)
    expected = [f"line {i}" for i in range(COUNT)]
    try:
        await execute(kernel, CODE)
        await await_until(lambda: reading.lines() == expected, "every line at the reading client")
        assert stuck.lines() == []
        assert first.buffered >= COUNT - 1  # waiting for it, not dropped (one may be in its send)
        stuck.gate.set()
        await await_until(lambda: stuck.lines() == expected, "every line, in order, once it reads")
    finally:
        await clients.disconnect(first, stuck)
        await clients.disconnect(second, reading)


async def test_a_message_reaches_every_client_once(kernel: Kernel, kserver: Server) -> None:
    clients = kserver.kernel_websockets.clients_of(kernel)
    sinks = [GatedSink() for _ in range(3)]
    relays = [await clients.connect(uuid.uuid4().hex, sink, True) for sink in sinks]
    try:
        await execute(kernel, "print('line once', flush=True)")
        for sink in sinks:
            await await_until(lambda sink=sink: sink.lines() == ["line once"], "the line at every client")
        await execute(kernel, "pass")  # anything later than the line has arrived too: still once
        assert all(sink.lines() == ["line once"] for sink in sinks)
    finally:
        for relay, sink in zip(relays, sinks, strict=True):
            await clients.disconnect(relay, sink)


async def test_held_frames_are_flushed_whole_and_in_order_at_the_end_of_each_batch(
        kernel: Kernel, kserver: Server) -> None:
    clients = kserver.kernel_websockets.clients_of(kernel)
    sinks = [HoldingSink(), HoldingSink()]
    relays = [await clients.connect(uuid.uuid4().hex, sink, True) for sink in sinks]
    expected = [f"line {i}" for i in range(COUNT)]
    try:
        await execute(kernel, CODE)
        for sink in sinks:
            await await_until(lambda sink=sink: sink.lines() == expected, "every line, in order, at every client")
        # A lone message with nothing after it (printed by a thread once the cell is over): its
        # batch is that one message, flushed at once, not kept until something else comes.
        await execute(kernel, "import threading\n"
                              "threading.Timer(0.2, lambda: print('line late', flush=True)).start()")
        for sink in sinks:
            await await_until(lambda sink=sink: sink.lines()[-1:] == ["line late"], "the late line at every client")
            assert sink.held == []
            assert sink.holds >= COUNT  # the kernel's messages went through hold ...
            assert sink.flushes >= 1  # ... and out with flush
    finally:
        for relay, sink in zip(relays, sinks, strict=True):
            await clients.disconnect(relay, sink)
