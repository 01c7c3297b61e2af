"""A client is a client of the kernel from the moment its websocket is accepted: output the kernel
sends while the accept is on its way (another client's cell printing) reaches it too. Real
uvicorn, a real kernel; a pass-through middleware holds the new client's accept (as a busy event
loop or a slow network write would) while another client prints."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from carme import create_app
from tests.kernels.test_channels import start_kernel
from tests.kernels.wsclient import Client
from tests.serving import TOKEN, serve

LATE = "late-client"


class HeldAccept:
    """Passes everything through; the accept of the websocket of session ``LATE`` waits until the
    test says ``go`` (and says ``accepting`` when it is there)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.accepting = threading.Event()
        self.go = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket" or f"session_id={LATE}".encode() not in scope.get("query_string", b""):
            await self.app(scope, receive, send)
            return

        async def held_send(message: dict[str, Any]) -> None:
            if message["type"] == "websocket.accept":
                self.accepting.set()
                assert await asyncio.to_thread(self.go.wait, 60), "the test never let the accept go"
            await send(message)

        await self.app(scope, receive, held_send)


async def test_output_sent_while_the_accept_is_on_its_way_reaches_the_new_client(root: Path) -> None:
    held = HeldAccept(create_app(str(root), token=TOKEN, extensions=[], config_files=False))
    with serve(held) as served:
        kernel_id = start_kernel(served)
        first = await Client.open(served.ws_url, kernel_id)
        late_open = asyncio.ensure_future(Client.open(served.ws_url, kernel_id, session_id=LATE))
        try:
            assert await asyncio.to_thread(held.accepting.wait, 60), "the late client's accept never came"
            assert await first.run("print('between', flush=True)") == "between\n"
        finally:
            held.go.set()
        late = await late_open
        # The late client's own cell: everything the kernel sent since the accept arrives before it.
        assert await late.run("print('after', flush=True)") == "after\n"
        streams = [m.content["text"] for m in late.received if m.msg_type == "stream"]
        assert streams == ["between\n", "after\n"]
        await first.close()
        await late.close()
