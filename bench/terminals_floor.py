"""The floor of the terminals benchmark: the least a server on uvicorn can do between a pty and a
websocket, so the bench can show how much of a figure is the server's and how much is the
client, uvicorn, loopback TCP and the pty's.

It speaks just enough of the terminals API for the bench's client (``POST /api/terminals``,
``DELETE /api/terminals/NAME``, ``/terminals/websocket/NAME`` with ``setup``, ``stdin`` and
``stdout``) and nothing else: no authentication, no replay, no flow control, no several
browsers; one ``stdout`` message per pty read, input written as it comes. It runs on uvicorn
with carme's websocket settings (uvloop, carme's websocket implementation, no compression).

    python bench/terminals_floor.py PORT SHELL [ARGS...]
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import subprocess
import sys
import termios
from typing import Any

import orjson
import uvicorn

from carme.running import WEBSOCKET_PROTOCOL

JSON = [(b"content-type", b"application/json")]


def _controlling_tty() -> None:  # in the child, after setsid
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Floor:
    """Shells on ptys by name, and the ASGI app serving them."""

    def __init__(self, shell: list[str]) -> None:
        self.shell = shell
        self.ptys: dict[str, tuple[int, subprocess.Popen[bytes]]] = {}

    def create(self) -> str:
        controller, follower = os.openpty()
        proc = subprocess.Popen(self.shell, stdin=follower, stdout=follower, stderr=follower,
                                start_new_session=True, preexec_fn=_controlling_tty)
        os.close(follower)
        os.set_blocking(controller, False)
        name = str(len(self.ptys) + 1)
        self.ptys[name] = (controller, proc)
        return name

    def delete(self, name: str) -> None:
        controller, proc = self.ptys.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        proc.wait()
        os.close(controller)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http":
            status, body = 200, b"{}"
            if scope["method"] == "POST" and path == "/api/terminals":
                body = orjson.dumps({"name": self.create()})
            elif scope["method"] == "DELETE" and path.startswith("/api/terminals/"):
                self.delete(path.rsplit("/", 1)[1])
                status, body = 204, b""
            await send({"type": "http.response.start", "status": status, "headers": JSON})
            await send({"type": "http.response.body", "body": body})
        elif scope["type"] == "websocket":
            await self.websocket(self.ptys[path.rsplit("/", 1)[1]][0], receive, send)

    async def websocket(self, fd: int, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": '["setup",{}]'})
        loop = asyncio.get_running_loop()
        reads: asyncio.Queue[bytes] = asyncio.Queue()

        def readable() -> None:
            try:
                reads.put_nowait(os.read(fd, 65536))
            except OSError:
                loop.remove_reader(fd)

        async def pump() -> None:
            while True:
                text = (await reads.get()).decode("utf-8", "replace")
                await send({"type": "websocket.send", "text": orjson.dumps(["stdout", text]).decode()})

        loop.add_reader(fd, readable)
        sender = asyncio.ensure_future(pump())
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    return
                data = orjson.loads(message["text"])
                if data[0] == "stdin":
                    os.write(fd, data[1].encode())
        finally:
            loop.remove_reader(fd)
            sender.cancel()


def main() -> None:
    port, shell = int(sys.argv[1]), sys.argv[2:]
    # /api/status answers 200 too (any GET does): the bench's launcher waits for it.
    uvicorn.run(Floor(shell), host="127.0.0.1", port=port, log_level="warning", ws=WEBSOCKET_PROTOCOL,
                ws_per_message_deflate=False, lifespan="off")


if __name__ == "__main__":
    main()
