"""A small Jupyter websocket client for tests: both protocols, decoded written out independently
of carme's own codecs (so a codec bug cannot hide behind a symmetric one). The one websocket
execute helper; the widgets tests use it as their frontend."""

from __future__ import annotations

import asyncio
import json
import struct
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from tests.serving import AUTH

V1 = "v1.kernel.websocket.jupyter.org"


@dataclass
class Msg:
    channel: str
    header: dict[str, Any]
    parent_header: dict[str, Any]
    metadata: dict[str, Any]
    content: dict[str, Any]
    buffers: list[bytes] = field(default_factory=list)

    @property
    def msg_type(self) -> str:
        return str(self.header.get("msg_type"))

    @property
    def parent_id(self) -> str | None:
        return self.parent_header.get("msg_id")


def pack_v1(channel: str, parts: list[bytes]) -> bytes:
    offsets = [8 * (len(parts) + 3)]
    offsets.append(offsets[0] + len(channel))
    for part in parts:
        offsets.append(offsets[-1] + len(part))
    return struct.pack(f"<{len(offsets) + 1}Q", len(offsets), *offsets) + channel.encode() + b"".join(parts)


def unpack_v1(frame: bytes) -> Msg:
    (n,) = struct.unpack_from("<Q", frame)
    offsets = struct.unpack_from(f"<{n}Q", frame, 8)
    pieces = [frame[offsets[i]:offsets[i + 1]] for i in range(n - 1)]
    channel, parts = pieces[0].decode(), pieces[1:]
    return Msg(channel, *(json.loads(p) for p in parts[:4]), buffers=list(parts[4:]))  # type: ignore[arg-type]


def pack_legacy(msg: dict[str, Any], buffers: list[bytes]) -> bytes | str:
    if not buffers:
        return json.dumps(msg)
    body = json.dumps(msg).encode()
    pieces = [body, *buffers]
    offsets = [4 * (len(pieces) + 1)]
    for piece in pieces[:-1]:
        offsets.append(offsets[-1] + len(piece))
    return struct.pack(f">{len(pieces) + 1}I", len(pieces), *offsets) + b"".join(pieces)


def unpack_legacy(frame: bytes | str) -> Msg:
    buffers: list[bytes] = []
    if isinstance(frame, bytes):
        (count,) = struct.unpack_from(">I", frame)
        offsets = [*struct.unpack_from(f">{count}I", frame, 4), len(frame)]
        pieces = [frame[offsets[i]:offsets[i + 1]] for i in range(count)]
        frame, buffers = pieces[0].decode(), pieces[1:]
    msg = json.loads(frame)
    assert msg["msg_id"] == msg["header"]["msg_id"] and msg["msg_type"] == msg["header"]["msg_type"]
    return Msg(msg["channel"], msg["header"], msg["parent_header"], msg["metadata"], msg["content"], buffers)


class Client:
    """One websocket to a kernel, speaking v1 or legacy.

    It reads only when asked (a test can play a slow client); everything read is kept in
    ``received``, so :meth:`wait_for` finds a message that an earlier read already passed.
    """

    def __init__(self, ws: ClientConnection, session_id: str, v1: bool) -> None:
        self.ws = ws
        self.session_id = session_id
        self.v1 = v1
        self.received: list[Msg] = []

    @classmethod
    async def open(cls, base_ws_url: str, kernel_id: str, session_id: str | None = None, v1: bool = True,
                   kernels_path: str = "api/kernels", headers: dict[str, str] | None = None, **kwargs: Any) -> Client:
        """``headers`` replace the token header (a client identified by a cookie)."""
        session_id = session_id or uuid.uuid4().hex
        url = f"{base_ws_url}/{kernels_path}/{kernel_id}/channels?session_id={session_id}"
        ws = await connect(url, subprotocols=[V1] if v1 else None,  # type: ignore[list-item]
                           additional_headers=headers or AUTH, max_size=None, **kwargs)
        assert ws.subprotocol == (V1 if v1 else None)
        return cls(ws, session_id, v1)

    async def close(self) -> None:
        await self.ws.close()

    def message(self, msg_type: str, content: dict[str, Any]) -> dict[str, Any]:
        header = {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "session": self.session_id,
                  "username": "test", "date": "2026-01-01T00:00:00.000000Z", "version": "5.3"}
        return {"header": header, "parent_header": {}, "metadata": {}, "content": content}

    async def send(self, channel: str, msg_type: str, content: dict[str, Any],
                   buffers: list[bytes] | None = None) -> str:
        msg = self.message(msg_type, content)
        await self.send_raw(channel, msg, buffers or [])
        return str(msg["header"]["msg_id"])

    async def send_raw(self, channel: str, msg: dict[str, Any], buffers: list[bytes]) -> None:
        if self.v1:
            parts = [json.dumps(msg[k]).encode() for k in ("header", "parent_header", "metadata", "content")]
            await self.ws.send(pack_v1(channel, parts + buffers))
        else:
            await self.ws.send(pack_legacy({**msg, "channel": channel}, buffers))

    async def recv(self, timeout: float = 30) -> Msg:
        frame = await asyncio.wait_for(self.ws.recv(), timeout)
        if self.v1:
            assert isinstance(frame, bytes)
            msg = unpack_v1(frame)
        else:
            msg = unpack_legacy(frame)
        self.received.append(msg)
        return msg

    async def wait_for(self, predicate: Callable[[Msg], bool], timeout: float = 30) -> Msg:
        """The first message received so far or from now on that matches ``predicate``."""
        for msg in self.received:
            if predicate(msg):
                return msg
        return (await self.until(predicate, timeout))[-1]

    async def until(self, predicate: Any, timeout: float = 30) -> list[Msg]:
        """Messages received until (and including) the first one matching ``predicate``."""
        seen: list[Msg] = []
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.recv(timeout)
                seen.append(msg)
                if predicate(msg):
                    return seen

    async def execute(self, code: str, timeout: float = 30) -> tuple[list[Msg], Msg]:
        """Run ``code``; returns (iopub messages of it up to status idle, the execute_reply)."""
        msg_id = await self.send("shell", "execute_request", {"code": code, "silent": False, "store_history": False,
                                                              "user_expressions": {}, "allow_stdin": False})
        return await self.collect(msg_id, timeout)

    async def collect(self, msg_id: str, timeout: float = 30) -> tuple[list[Msg], Msg]:
        iopub: list[Msg] = []
        reply: Msg | None = None
        idle = False
        async with asyncio.timeout(timeout):
            while reply is None or not idle:
                msg = await self.recv(timeout)
                if msg.parent_id != msg_id:
                    continue
                if msg.channel == "shell":
                    reply = msg
                elif msg.channel == "iopub":
                    iopub.append(msg)
                    idle = idle or (msg.msg_type == "status" and msg.content["execution_state"] == "idle")
        return iopub, reply

    async def run(self, code: str, timeout: float = 60) -> str:
        """Run ``code``, which must succeed; its stdout."""
        iopub, reply = await self.execute(code, timeout)
        assert reply.content["status"] == "ok", f"kernel error: {reply.content.get('ename')}: {reply.content.get('evalue')}"
        return stdout(iopub)

    async def comm_msg(self, comm_id: str, data: dict[str, Any], buffers: Sequence[bytes] = ()) -> str:
        return await self.send("shell", "comm_msg", {"comm_id": comm_id, "data": data}, list(buffers))


def stdout(messages: list[Msg]) -> str:
    return "".join(m.content["text"] for m in messages if m.msg_type == "stream" and m.content["name"] == "stdout")
