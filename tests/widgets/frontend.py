"""A minimal widgets frontend for the tests: a kernel websocket client that keeps what it receives.

It does what JupyterLab's kernel connection does for widgets, and nothing more: sends
execute_request and comm messages on shell, collects everything the kernel sends, and lets a test
wait for a message it may already have received. The wire codecs are the kernel tests' own
(tests/kernels/wsclient.py), written independently of carme's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from tests.kernels.wsclient import Client, Msg


class Frontend:
    """One websocket connection to a kernel, with every message it has received."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.received: list[Msg] = []
        self._arrived = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, ws_url: str, kernel_id: str, v1: bool = True) -> Frontend:
        return cls(await Client.open(ws_url, kernel_id, v1=v1))

    async def _read(self) -> None:
        while True:
            self.received.append(await self.client.recv(timeout=3600))
            self._arrived.set()

    async def close(self) -> None:
        self._reader.cancel()
        await self.client.close()

    async def wait_for(self, predicate: Callable[[Msg], bool], timeout: float = 30) -> Msg:
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
                raise TimeoutError(f"no matching message in {timeout}s; last: {[m.msg_type for m in self.received[-20:]]}")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                pass

    async def execute(self, code: str, timeout: float = 60) -> str:
        """Run ``code``; its stdout once the kernel is idle again. Raises on an error."""
        msg_id = await self.client.send("shell", "execute_request", {
            "code": code, "silent": False, "store_history": False, "user_expressions": {}, "allow_stdin": False})
        reply = await self.wait_for(lambda m: m.msg_type == "execute_reply" and m.parent_id == msg_id, timeout)
        await self.wait_for(lambda m: m.msg_type == "status" and m.parent_id == msg_id
                            and m.content["execution_state"] == "idle", timeout)
        assert reply.content["status"] == "ok", f"kernel error: {reply.content.get('ename')}: {reply.content.get('evalue')}"
        return "".join(m.content["text"] for m in self.received
                       if m.msg_type == "stream" and m.parent_id == msg_id and m.content["name"] == "stdout")

    async def comm_msg(self, comm_id: str, data: dict[str, Any], buffers: Sequence[bytes] = ()) -> str:
        return await self.client.send("shell", "comm_msg", {"comm_id": comm_id, "data": data}, list(buffers))


async def wait_until(get: Callable[[], Any], check: Callable[[Any], bool], timeout: float = 30) -> Any:
    """Poll ``get()`` (sync, run in a thread) until ``check`` holds for its value; return it.
    For server state that changes after an iopub message the test already saw."""
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
