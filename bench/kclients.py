"""Kernel clients with one interface: over a server's kernel websocket (v1 binary or legacy JSON),
or straight to the kernel's ZMQ sockets (the floor). Written for the bench only: small and cheap,
parsing no more than the benchmarks need (header, parent msg_id, and content only when asked)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import subprocess
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import websockets
import zmq
import zmq.asyncio

from fixtures import kernel_argv
from servers import free_port

V1 = "v1.kernel.websocket.jupyter.org"
DELIM = b"<IDS|MSG>"


@dataclass
class Msg:
    """One received message: only what the benchmarks look at is decoded eagerly."""

    channel: str
    msg_type: str
    parent_id: str | None
    nbytes: int  # size of the content part as received
    _content: Callable[[], dict[str, Any]]

    def content(self) -> dict[str, Any]:
        return self._content()


def _header(msg_type: str, session: str) -> dict[str, Any]:
    return {"msg_id": uuid.uuid4().hex, "username": "bench", "session": session,
            "date": datetime.now(UTC).isoformat(), "msg_type": msg_type, "version": "5.3"}


class KernelClient:
    """Send requests, receive messages."""

    session = ""

    async def send(self, channel: str, msg_type: str, content: dict[str, Any]) -> str:
        raise NotImplementedError

    async def recv(self) -> Msg:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def request(self, msg_type: str, content: dict[str, Any], timeout: float = 60) -> Msg:
        """Send on shell and wait for the reply to it (other messages are skipped)."""
        msg_id = await self.send("shell", msg_type, content)
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.recv()
                if msg.channel == "shell" and msg.parent_id == msg_id:
                    return msg


class WsKernelClient(KernelClient):
    """A client of ``/api/kernels/ID/channels`` with either websocket protocol."""

    def __init__(self, ws_url: str, kernel_id: str, headers: dict[str, str], protocol: str,
                 deflate: bool) -> None:
        self.session = uuid.uuid4().hex
        self.url = f"{ws_url}/api/kernels/{kernel_id}/channels?session_id={self.session}"
        self.headers, self.protocol, self.deflate = headers, protocol, deflate
        self.ws: Any = None

    async def connect(self) -> WsKernelClient:
        self.ws = await websockets.connect(
            self.url, additional_headers=self.headers, max_size=None, ping_interval=None,
            subprotocols=[V1] if self.protocol == "v1" else None,  # type: ignore[list-item]
            compression="deflate" if self.deflate else None, open_timeout=120)
        if self.protocol == "v1" and self.ws.subprotocol != V1:
            raise RuntimeError(f"server did not select {V1} (got {self.ws.subprotocol!r})")
        return self

    async def send(self, channel: str, msg_type: str, content: dict[str, Any]) -> str:
        header = _header(msg_type, self.session)
        if self.protocol == "v1":
            parts = [channel.encode(), orjson.dumps(header), b"{}", b"{}", orjson.dumps(content)]
            offsets = [8 * (len(parts) + 2)]
            for part in parts:
                offsets.append(offsets[-1] + len(part))
            frame = b"".join([len(offsets).to_bytes(8, "little"),
                              *(o.to_bytes(8, "little") for o in offsets), *parts])
            await self.ws.send(frame)
        else:
            await self.ws.send(orjson.dumps({"header": header, "parent_header": {}, "metadata": {},
                                             "content": content, "channel": channel, "buffers": []}).decode())
        return header["msg_id"]

    async def recv(self) -> Msg:
        frame = await self.ws.recv()
        if isinstance(frame, str) or self.protocol != "v1":
            return self._legacy(frame)
        n = int.from_bytes(frame[:8], "little")
        off = [int.from_bytes(frame[8 * (i + 1):8 * (i + 2)], "little") for i in range(n)]
        header = orjson.loads(frame[off[1]:off[2]])
        parent = orjson.loads(frame[off[2]:off[3]])
        raw = frame[off[4]:off[5]]
        return Msg(frame[off[0]:off[1]].decode(), header["msg_type"], parent.get("msg_id"), len(raw),
                   lambda: orjson.loads(raw))

    def _legacy(self, frame: str | bytes) -> Msg:
        if isinstance(frame, bytes):  # legacy binary: u32 BE count + offsets, JSON first
            n = int.from_bytes(frame[:4], "big")
            start = int.from_bytes(frame[4:8], "big")
            end = int.from_bytes(frame[8:12], "big") if n > 1 else len(frame)
            frame = frame[start:end]
        msg = orjson.loads(frame)
        content = msg["content"]
        size = len(content.get("text", "")) if msg["header"]["msg_type"] == "stream" else 0
        return Msg(msg["channel"], msg["header"]["msg_type"], msg["parent_header"].get("msg_id"), size,
                   lambda: content)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


class DirectKernel:
    """An ipykernel launched straight from the bench (no server), like a server's provisioner does."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        ports = [free_port() for _ in range(5)]
        self.info = {"transport": "tcp", "ip": "127.0.0.1", "shell_port": ports[0], "iopub_port": ports[1],
                     "stdin_port": ports[2], "control_port": ports[3], "hb_port": ports[4],
                     "key": uuid.uuid4().hex, "signature_scheme": "hmac-sha256", "kernel_name": "benchpy"}
        self.file = workdir / f"kernel-{uuid.uuid4().hex[:8]}.json"
        self.file.write_text(json.dumps(self.info))
        self.file.chmod(0o600)
        self.proc = subprocess.Popen(kernel_argv(str(self.file)), env={**os.environ, **env}, cwd=workdir,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    async def stop(self) -> None:
        client = ZmqKernelClient(self.info)
        try:
            await client.send("control", "shutdown_request", {"restart": False})
            for _ in range(100):
                if self.proc.poll() is not None:
                    break
                await asyncio.sleep(0.05)
        finally:
            await client.close()
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.file.unlink(missing_ok=True)


class ZmqKernelClient(KernelClient):
    """Straight to the kernel's sockets: DEALER on shell/control, SUB on iopub, HMAC-SHA256 signed
    and verified, no high-water-mark drops (RCVHWM=0)."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.session = uuid.uuid4().hex
        self.ctx = zmq.asyncio.Context()
        self.key = info["key"].encode()
        addr = f"tcp://{info['ip']}:"
        self.sockets: dict[str, zmq.asyncio.Socket] = {}
        for channel, kind in (("shell", zmq.DEALER), ("control", zmq.DEALER), ("iopub", zmq.SUB)):
            sock = self.ctx.socket(kind)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RCVHWM, 0)
            # The kernel may not listen yet: retry the connect every 10 ms, not ZMQ's 100 ms.
            sock.setsockopt(zmq.RECONNECT_IVL, 10)
            if kind == zmq.SUB:
                sock.setsockopt(zmq.SUBSCRIBE, b"")
            sock.connect(addr + str(info[f"{channel}_port"]))
            self.sockets[channel] = sock
        self.poller = zmq.asyncio.Poller()
        self.names = {}
        for channel, sock in self.sockets.items():
            self.poller.register(sock, zmq.POLLIN)
            self.names[sock] = channel
        self.pending: deque[Msg] = deque()

    def _sign(self, parts: list[bytes]) -> bytes:
        mac = hmac.new(self.key, digestmod=hashlib.sha256)
        for part in parts:
            mac.update(part)
        return mac.hexdigest().encode()

    async def send(self, channel: str, msg_type: str, content: dict[str, Any]) -> str:
        header = _header(msg_type, self.session)
        parts = [orjson.dumps(header), b"{}", b"{}", orjson.dumps(content)]
        await self.sockets[channel].send_multipart([DELIM, self._sign(parts), *parts])
        return header["msg_id"]

    async def recv(self) -> Msg:
        while not self.pending:
            for sock, _ in await self.poller.poll():
                while True:
                    try:
                        frames = await sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._take(self.names[sock], frames)
        return self.pending.popleft()

    def _take(self, channel: str, frames: list[bytes]) -> None:
        i = frames.index(DELIM)
        sig, parts = frames[i + 1], frames[i + 2:i + 6]
        if not hmac.compare_digest(sig, self._sign(parts)):
            return  # a server drops these too
        header = orjson.loads(parts[0])
        parent = orjson.loads(parts[1])
        raw = parts[3]
        self.pending.append(Msg(channel, header["msg_type"], parent.get("msg_id"), len(raw),
                                lambda: orjson.loads(raw)))

    async def close(self) -> None:
        for sock in self.sockets.values():
            sock.close(0)
        self.ctx.term()
