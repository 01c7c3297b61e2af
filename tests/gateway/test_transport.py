"""A gateway kernel's messages reach carme through the core's transport seam (the bridge), and an
extension's own ZMQ sockets on it (``kernel.connect``) still work, signed both ways."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import orjson
import pytest
import zmq

from carme import create_app
from carme.kernels.kernel import Kernel
from carme.kernels.message import KernelMessage
from carme.kernels.session import DELIMITER
from carme.kernels.transport import KernelTransport
from tests.kernels.wsclient import Client
from tests.serving import TOKEN, serve_here

from .conftest import gateway_settings
from .enterprise_gateway import EnterpriseGateway

pytestmark = pytest.mark.timeout(300)


async def receive(kernel: Kernel, sock: zmq.asyncio.Socket, channel: str, timeout: float) -> KernelMessage:
    """The next message on one of ``kernel.connect``'s sockets, its signature checked."""
    frames = await asyncio.wait_for(sock.recv_multipart(), timeout)
    msg = kernel.session.deserialize(channel, frames)
    assert msg is not None, f"a {channel} message without a valid signature"
    return msg


async def request(kernel: Kernel, shell: zmq.asyncio.Socket, msg_type: str, content: dict[str, Any]) -> KernelMessage:
    """``msg_type`` on the extension's shell socket; its reply, on that socket."""
    msg = kernel.session.msg("shell", msg_type, content)
    await shell.send_multipart(kernel.session.serialize(msg))
    while (reply := await receive(kernel, shell, "shell", 30)).parent_msg_id != msg.msg_id:
        pass
    return reply


async def test_gateway_kernel_goes_through_the_transport_and_extension_sockets_still_work(
        root: Path, enterprise_gateway: EnterpriseGateway) -> None:
    app = create_app(str(root), token=TOKEN, extensions=["gateway"], config_files=False,
                     settings=gateway_settings(enterprise_gateway))
    server = app.server
    async with serve_here(app) as served:
        kernel = await server.kernels.start_kernel("python3")
        try:
            assert isinstance(kernel.transport, KernelTransport)  # the bridge: no local ZMQ hop for carme
            heard: list[KernelMessage] = []
            kernel.subscribe(heard.append)
            iopub = kernel.connect("iopub")
            shell = kernel.connect("shell", b"an-extension")
            # The bridge publishes iopub to sockets only once it has seen a subscription: ask until
            # this socket hears the status of a request of ours.
            async with asyncio.timeout(60):
                while True:
                    reply = await request(kernel, shell, "kernel_info_request", {})
                    try:
                        while (await receive(kernel, iopub, "iopub", 1.0)).parent_msg_id != reply.parent_msg_id:
                            pass
                        break
                    except TimeoutError:
                        continue
            reply = await request(kernel, shell, "execute_request", {"code": "print('to everyone')", "silent": False})
            assert reply.content["status"] == "ok"
            outputs: list[KernelMessage] = []
            while not (outputs and outputs[-1].msg_type == "status"
                       and outputs[-1].content["execution_state"] == "idle"):
                msg = await receive(kernel, iopub, "iopub", 30)
                if msg.parent_msg_id == reply.parent_msg_id:
                    outputs.append(msg)
            assert [m.content["text"] for m in outputs if m.msg_type == "stream"] == ["to everyone\n"]
            # The same output reached the kernel's subscribers through the transport.
            assert [m.content["text"] for m in heard
                    if m.msg_type == "stream" and m.parent_msg_id == reply.parent_msg_id] == ["to everyone\n"]
            # A websocket client beside the extension: its requests go through the transport.
            client = await Client.open(served.ws_url, kernel.id)
            try:
                assert await client.run("print(6 * 7)") == "42\n"
            finally:
                await client.close()
            iopub.close(linger=0)
            shell.close(linger=0)
        finally:
            await server.kernels.shutdown_kernel(kernel.id)


async def test_a_request_with_too_few_parts_is_dropped_and_the_kernel_goes_on(
        root: Path, enterprise_gateway: EnterpriseGateway, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(str(root), token=TOKEN, extensions=["gateway"], config_files=False,
                     settings=gateway_settings(enterprise_gateway))
    server = app.server
    async with serve_here(app) as served:
        kernel = await server.kernels.start_kernel("python3")
        client = await Client.open(served.ws_url, kernel.id)
        shell = kernel.connect("shell", b"an-extension")
        try:
            bridge = kernel.transport
            assert isinstance(bridge, KernelTransport)
            assert await client.run("print('before')") == "before\n"
            # A request cut short after its parent header, from a websocket client's identity
            # (through the transport) and from an extension's own socket (signed as it is).
            short = kernel.session.msg("shell", "kernel_info_request", {}).frames[:2]
            short_id = orjson.loads(short[0])["msg_id"]
            with caplog.at_level(logging.WARNING, logger="carme.gateway.bridge"):
                await bridge.send("shell", client.session_id.encode(), short)
                await shell.send_multipart([DELIMITER, kernel.session.sign(short), *short])
                # The extension's socket still gets its replies, and nothing answers the short one.
                reply = await request(kernel, shell, "kernel_info_request", {})
                assert reply.content["status"] == "ok"
            dropped = [r.getMessage() for r in caplog.records if r.name == "carme.gateway.bridge"]
            assert len(dropped) == 2, dropped
            assert dropped[0].endswith("dropped a shell message with too few parts"), dropped
            assert dropped[1].endswith("dropped a shell message with a bad signature or too few parts"), dropped
            # The websocket client goes on too, and heard nothing about the request cut short.
            assert await client.run("print('after')") == "after\n"
            assert not [m for m in client.received if m.parent_id == short_id]
        finally:
            shell.close(linger=0)
            await client.close()
            await server.kernels.shutdown_kernel(kernel.id)
