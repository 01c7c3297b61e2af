"""The transport seam (carme.kernels.transport): a provisioner that carries its kernel's messages
itself. Here a real one: it launches a local ipykernel and carries the messages over its own ZMQ
connection, as a remote provisioner carries them over its websocket. The server's requests, the
websocket clients' requests (replies and input requests to the asker only), iopub and a restart
all go through it; a local kernel has no transport."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path
from typing import Any

import orjson
import zmq
import zmq.asyncio

from carme import create_app
from carme.kernels.connection import ConnectionInfo, open_socket
from carme.kernels.provisioner import Provisioner
from carme.kernels.session import Session
from carme.kernels.specs import KernelSpec
from carme.kernels.transport import Deliver, KernelTransport
from carme.tasks import cancel_and_wait
from tests.serving import TOKEN, serve_here

from .conftest import FAST
from .wsclient import Client, stdout

CHANNELS = ("shell", "control", "stdin", "iopub")
log = logging.getLogger("tests.kernels.transport")


class CarryingTransport:
    """A :class:`KernelTransport` over its own ZMQ sockets to the kernel (one DEALER identity for
    every request: the kernel sends input requests to the identity of the shell request's sender).
    ``sent`` records (channel, identity, msg_type) of what carme handed it."""

    def __init__(self, context: zmq.asyncio.Context, info: ConnectionInfo) -> None:
        self.session = Session(info["key"].encode())
        identity = uuid.uuid4().hex.encode()
        self.sockets = {name: open_socket(context, info, name, identity) for name in CHANNELS}
        self.sent: list[tuple[str, bytes | None, str]] = []
        self._asked: dict[str, bytes | None] = {}  # msg_id -> who asked
        self._deliver: Deliver | None = None
        self._readers = [asyncio.ensure_future(self._read(name)) for name in CHANNELS]

    def attach(self, deliver: Deliver) -> None:
        self._deliver = deliver

    def detach(self) -> None:
        self._deliver = None

    async def send(self, channel: str, identity: bytes | None, parts: list[bytes]) -> None:
        header = orjson.loads(parts[0])
        self._asked[header["msg_id"]] = identity
        self.sent.append((channel, identity, header["msg_type"]))
        await self.sockets[channel].send_multipart(self.session.serialize(parts))

    async def _read(self, channel: str) -> None:
        while True:
            msg = self.session.deserialize(channel, await self.sockets[channel].recv_multipart())
            if msg is None or self._deliver is None:
                continue
            identity = None if channel == "iopub" else self._asked.get(msg.parent_msg_id or "")
            self._deliver(channel, identity, msg.frames)

    async def close(self) -> None:
        for task in self._readers:
            await cancel_and_wait(task, "a test transport reader", log)
        for sock in self.sockets.values():
            sock.close(linger=0)


class CarryingProvisioner:
    """The local provisioner's process, reached through a :class:`CarryingTransport`."""

    def __init__(self, local: Provisioner, context: zmq.asyncio.Context) -> None:
        self.local = local
        self.context = context
        self.transport: CarryingTransport | None = None
        self.transports_made = 0

    async def launch(self, kernel_id: str, spec: KernelSpec, cwd: Path, env: dict[str, str], key: bytes,
                     reuse: ConnectionInfo | None = None) -> ConnectionInfo:
        info = await self.local.launch(kernel_id, spec, cwd, env, key, reuse)
        if self.transport is None:  # a restart keeps the ports, so the transport's sockets stay good
            self.transport = CarryingTransport(self.context, info)
            self.transports_made += 1
        return info

    @property
    def pid(self) -> int | None:
        return self.local.pid

    async def poll(self) -> int | None:
        return await self.local.poll()

    async def send_signal(self, signum: int) -> None:
        await self.local.send_signal(signum)

    async def kill(self) -> None:
        await self.local.kill()

    async def wait(self, timeout: float) -> int | None:
        return await self.local.wait(timeout)

    async def cleanup(self, restart: bool) -> None:
        await self.local.cleanup(restart)
        if not restart and self.transport is not None:
            await self.transport.close()
            self.transport = None


async def test_a_kernel_reached_through_a_transport(root: Path, caplog: Any) -> None:
    app = create_app(str(root), token=TOKEN, extensions=[], config_files=False, settings=FAST)
    server = app.server
    made: list[CarryingProvisioner] = []

    def carrying(spec: KernelSpec, chosen: Provisioner) -> Provisioner:
        made.append(CarryingProvisioner(chosen, server.kernels.context))
        return made[0]

    async with serve_here(app) as served:
        local = await server.kernels.start_kernel()
        assert local.transport is None  # ZMQ sockets at its connection info, as before
        await server.kernels.shutdown_kernel(local.id)

        kernel = await server.kernels.start_kernel(provisioner=carrying)
        try:
            provisioner = made[0]
            transport = provisioner.transport
            assert transport is not None and kernel.transport is transport
            assert isinstance(transport, KernelTransport)
            assert ("shell", None, "kernel_info_request") in transport.sent  # the server's own request

            heard: list[Any] = []
            kernel.subscribe(heard.append)
            asker = await Client.open(served.ws_url, kernel.id)
            watcher = await Client.open(served.ws_url, kernel.id, v1=False)
            try:
                msg_id = await asker.send("shell", "execute_request", {
                    "code": "answer = input('name? ')\nprint('hello', answer)", "silent": False,
                    "store_history": False, "user_expressions": {}, "allow_stdin": True})
                asked = await asker.wait_for(lambda m: m.channel == "stdin")
                assert asked.msg_type == "input_request" and asked.content["prompt"] == "name? "
                await asker.send("stdin", "input_reply", {"value": "transport"})
                iopub, reply = await asker.collect(msg_id)
                assert reply.content["status"] == "ok" and stdout(iopub) == "hello transport\n"
                # The watcher sees the output, never the asker's replies or input request.
                seen = await watcher.until(lambda m: m.parent_id == msg_id and m.msg_type == "status"
                                           and m.content["execution_state"] == "idle")
                assert stdout([m for m in seen if m.parent_id == msg_id]) == "hello transport\n"
                mine = await watcher.send("shell", "kernel_info_request", {})
                await watcher.wait_for(lambda m: m.channel == "shell" and m.parent_id == mine)
                assert not [m for m in watcher.received if m.channel in ("shell", "stdin") and m.parent_id == msg_id]
                who = asker.session_id.encode()
                assert ("shell", who, "execute_request") in transport.sent
                assert ("stdin", who, "input_reply") in transport.sent
                assert [m.content["text"] for m in heard
                        if m.msg_type == "stream" and m.parent_msg_id == msg_id] == ["hello transport\n"]

                # What a transport delivers that is no kernel message is dropped, logged, and
                # leaves the kernel and its clients working.
                deliver = transport._deliver
                assert deliver is not None
                with caplog.at_level(logging.WARNING, logger="carme.kernels.transport"):
                    deliver("iopub", None, [b"{}"])  # too few parts
                    deliver("shell", who, [b"not json", b"{}", b"{}", b"{}"])
                dropped = [r.getMessage() for r in caplog.records if r.name == "carme.kernels.transport"]
                assert len(dropped) == 2 and all("dropped a" in line for line in dropped), dropped
                assert (await asker.run("print(6 * 7)")).strip() == "42"

                # A restart keeps the transport, and the clients on it.
                await server.kernels.restart_kernel(kernel.id)
                assert kernel.transport is transport and provisioner.transports_made == 1
                assert (await asker.run("print('after' + ' restart')")).strip() == "after restart"
            finally:
                await asker.close()
                await watcher.close()
        finally:
            await server.kernels.shutdown_kernel(kernel.id)
        assert kernel.transport is None and provisioner.transport is None
