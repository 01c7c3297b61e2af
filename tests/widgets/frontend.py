"""A minimal frontend for the widgets tests: a kernel websocket client speaking the v1 protocol.

It does what JupyterLab's kernel connection does for widgets, and nothing more: sends
execute_request and comm messages on shell, collects iopub. Kept in the tests (not the library)
because a real server never acts as a websocket client.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import orjson
import websockets

V1 = "v1.kernel.websocket.jupyter.org"


def encode_v1(channel: str, parts: Sequence[bytes]) -> bytes:
    name = channel.encode()
    offsets = [8 * (len(parts) + 3), 8 * (len(parts) + 3) + len(name)]
    for part in parts:
        offsets.append(offsets[-1] + len(part))
    head = len(offsets).to_bytes(8, "little") + b"".join(o.to_bytes(8, "little") for o in offsets)
    return head + name + b"".join(parts)


def decode_v1(frame: bytes) -> tuple[str, list[bytes]]:
    count = int.from_bytes(frame[:8], "little")
    offsets = [int.from_bytes(frame[8 * (i + 1):8 * (i + 2)], "little") for i in range(count)]
    channel = frame[offsets[0]:offsets[1]].decode()
    return channel, [frame[offsets[i]:offsets[i + 1]] for i in range(1, count - 1)]


class Frontend:
    """One websocket connection to a kernel, with the iopub messages it has received."""

    def __init__(self, ws: Any, session_id: str) -> None:
        self.ws = ws
        self.session_id = session_id
        self.received: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, ws_url: str, kernel_id: str, token: str, session_id: str | None = None) -> Frontend:
        session_id = session_id or uuid.uuid4().hex
        ws = await websockets.connect(
            f"{ws_url}/api/kernels/{kernel_id}/channels?session_id={session_id}",
            subprotocols=[V1], additional_headers={"Authorization": f"token {token}"}, max_size=None)  # type: ignore[list-item]
        return cls(ws, session_id)

    async def _read(self) -> None:
        async for frame in self.ws:
            channel, parts = decode_v1(frame)
            msg = {"channel": channel, "header": orjson.loads(parts[0]), "parent_header": orjson.loads(parts[1]),
                   "metadata": orjson.loads(parts[2]), "content": orjson.loads(parts[3]), "buffers": parts[4:]}
            self.received.append(msg)
            self._arrived.set()

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()

    async def send(self, channel: str, msg_type: str, content: dict[str, Any], buffers: Sequence[bytes] = (),
                   metadata: dict[str, Any] | None = None) -> str:
        msg_id = uuid.uuid4().hex
        header = {"msg_id": msg_id, "msg_type": msg_type, "username": "test", "session": self.session_id,
                  "date": "2026-01-01T00:00:00.000000Z", "version": "5.4"}
        parts = [orjson.dumps(header), b"{}", orjson.dumps(metadata or {}), orjson.dumps(content), *buffers]
        await self.ws.send(encode_v1(channel, parts))
        return msg_id

    async def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30) -> dict[str, Any]:
        """The first received message (old or new) matching ``predicate``."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for msg in self.received[seen:]:
                if predicate(msg):
                    return msg
            seen = len(self.received)
            left = deadline - time.monotonic()
            if left <= 0:
                types = [m["header"]["msg_type"] for m in self.received[-20:]]
                raise TimeoutError(f"no matching message in {timeout}s; last received: {types}")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                pass

    async def execute(self, code: str, timeout: float = 60) -> str:
        """Run ``code``; return its stdout once the kernel is idle again. Raises on an error."""
        msg_id = await self.send("shell", "execute_request", {
            "code": code, "silent": False, "store_history": False, "user_expressions": {}, "allow_stdin": False,
            "stop_on_error": True})
        reply = await self.wait_for(lambda m: m["header"]["msg_type"] == "execute_reply"
                                    and m["parent_header"].get("msg_id") == msg_id, timeout)
        await self.wait_for(lambda m: m["header"]["msg_type"] == "status" and m["content"]["execution_state"] == "idle"
                            and m["parent_header"].get("msg_id") == msg_id, timeout)
        if reply["content"]["status"] != "ok":
            raise AssertionError(f"kernel error: {reply['content'].get('ename')}: {reply['content'].get('evalue')}")
        return "".join(m["content"]["text"] for m in self.received
                       if m["header"]["msg_type"] == "stream" and m["parent_header"].get("msg_id") == msg_id
                       and m["content"]["name"] == "stdout")

    async def comm_msg(self, comm_id: str, data: dict[str, Any], buffers: Sequence[bytes] = ()) -> str:
        return await self.send("shell", "comm_msg", {"comm_id": comm_id, "data": data}, buffers)


async def wait_until(get: Callable[[], Any], check: Callable[[Any], bool], timeout: float = 30) -> Any:
    """Poll ``get()`` (sync) until ``check`` holds for its value; return it. For REST state that
    changes after an iopub message the test already saw."""
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(get)
        if check(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        await asyncio.sleep(0.05)


def widget_state(client: httpx.Client, kernel_id: str) -> dict[str, Any]:
    response = client.get(f"/api/widgets/{kernel_id}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]
