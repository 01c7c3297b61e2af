"""carme.run: an embedder's one call gets the server settings of `carme serve`: no websocket
compression even when the browser offers it, and websocket messages over uvicorn's 16 MiB
default accepted (up to carme's websocket_max_message_size). A real process running the
README's embedding snippet, a real kernel."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

import carme
from tests.environment import isolated_environ
from tests.kernels.wsclient import Client
from tests.processes import Process
from tests.serving import AUTH, TOKEN

EMBEDDED = f"""
import sys, carme
app = carme.create_app(sys.argv[1], token={TOKEN!r}, extensions=[])
carme.run(app, host="127.0.0.1", port=0)
"""


def test_uvicorn_options_follow_the_settings(tmp_path: Path) -> None:
    app = carme.create_app(str(tmp_path), token=TOKEN, extensions=[], config_files=False,
                           settings={"websocket_max_message_size": 1234})
    options = carme.uvicorn_options(app)
    assert options["ws_per_message_deflate"] is False
    assert options["ws_max_size"] == 1234
    assert options["lifespan"] == "on"
    assert options["ws"] == carme.running.WEBSOCKET_PROTOCOL


@pytest.mark.asyncio
async def test_embedded_with_carme_run_relays_big_messages_uncompressed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    server = Process([sys.executable, "-c", EMBEDDED, str(root)], cwd=tmp_path,
                     env=isolated_environ(tmp_path / "home"))
    try:
        base = server.wait_for(r"running on (http://127\.0\.0\.1:\d+)", timeout=60).group(1)
        async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=60) as http:
            reply = await http.post("/api/kernels", json={"name": "python3"})
            assert reply.status_code == 201, reply.text
            kernel_id = reply.json()["id"]
        client = await Client.open("ws" + base[len("http"):], kernel_id, compression="deflate")
        try:
            assert client.ws.response.headers.get("Sec-WebSocket-Extensions") is None  # offered, not taken
            await client.ws.send(b"\x00" * (17 * 1024 * 1024))  # over uvicorn's default cap: not a message, dropped
            info = await client.send("shell", "kernel_info_request", {})
            reply_msg = await client.wait_for(lambda m: m.parent_id == info and m.channel == "shell", timeout=60)
            assert reply_msg.content["implementation"] == "ipython"  # the websocket stayed open
        finally:
            await client.close()
    finally:
        server.stop()
