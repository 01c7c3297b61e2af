"""Restricted kernel websockets: a MessagePolicy chosen per connection, end to end.

A test plugin serves the kernel websocket a second time, restricted as a dashboard visitor's is
(comms, kernel_info and input replies only; no source, nothing answering the private session),
next to the core's full-access route on the same kernel.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.types import Receive, Scope, Send

from carme.hooks import hookimpl
from carme.kernels.policy import MessagePolicy
from carme.server import Server
from tests.polling import await_until
from tests.serving import Served, serve_isolated

from .test_channels import kernel_model, start_kernel
from .wsclient import Client, Msg

pytestmark = pytest.mark.asyncio(loop_scope="function")

PRIVATE = "the-servers-own-executor"
SENTINEL = "SENTINEL-7f3a"
RESTRICTED = "restricted"


class RestrictedRoute:
    """A plugin serving /restricted/ID/channels with a visitor's policy."""

    name = "restricted"

    def __init__(self) -> None:
        self.server: Server | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.server is not None
        kernel_id = scope["path_params"]["kernel_id"]
        # /cached/...: kernel_info answered from what the kernel said at start
        cached = self.server.kernels.get(kernel_id).kernel_info if scope["path"].startswith("/cached/") else None
        policy = MessagePolicy.restricted("test visitor", private_sessions={PRIVATE}, hide={"error"},
                                          kernel_info=cached, hide_streams={"stderr"})
        await self.server.kernel_websockets.serve(scope, receive, send, kernel_id, policy)

    @hookimpl
    def carme_register_routes(self, server: Server) -> list[BaseRoute]:
        self.server = server
        return [WebSocketRoute("/restricted/{kernel_id}/channels", self),
                WebSocketRoute("/cached/{kernel_id}/channels", self)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve_isolated(tmp_path_factory.mktemp("policy-home"), plugins=[RestrictedRoute()]) as running:
        yield running


@pytest.fixture(scope="module")
def kernel(server: Served) -> str:
    return start_kernel(server)


async def restricted(server: Served, kernel: str, session_id: str | None = None) -> Client:
    return await Client.open(server.ws_url, kernel, session_id=session_id, kernels_path=RESTRICTED)


def text_of(messages: list[Msg]) -> str:
    return json.dumps([[m.header, m.parent_header, m.content] for m in messages])


async def round_trip(client: Client) -> list[Msg]:
    """Everything received until the reply to a fresh kernel_info_request (shell is in order)."""
    msg_id = await client.send("shell", "kernel_info_request", {})
    return await client.until(lambda m: m.channel == "shell" and m.parent_id == msg_id)


async def test_restricted_client_cannot_execute(server: Served, kernel: str, tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    visitor = await restricted(server, kernel)
    try:
        code = f"open({str(marker)!r}, 'w').close()"
        for msg_type in ("execute_request", "inspect_request", "complete_request", "history_request"):
            await visitor.send("shell", msg_type, {"code": code, "silent": False, "store_history": False,
                                                   "user_expressions": {}, "allow_stdin": False, "cursor_pos": 0,
                                                   "hist_access_type": "tail", "n": 10})
        seen = await round_trip(visitor)
        assert [m.msg_type for m in seen if m.channel == "shell"] == ["kernel_info_reply"]
        comm_info = await visitor.send("shell", "comm_info_request", {})
        seen = await visitor.until(lambda m: m.parent_id == comm_info and m.channel == "shell")
        assert seen[-1].msg_type == "comm_info_reply"
    finally:
        await visitor.close()
    assert not marker.exists()  # the kernel answered later requests, so it never got the execute


async def test_restricted_client_sees_output_but_never_source(server: Served, kernel: str) -> None:
    visitor = await restricted(server, kernel)
    owner = await Client.open(server.ws_url, kernel)
    try:
        iopub, _ = await owner.execute(f"import sys; print('quoted', file=sys.stderr); print('visible')  # {SENTINEL}")
        assert SENTINEL in text_of(iopub)  # the full-access client does see its execute_input
        seen = await visitor.until(lambda m: m.msg_type == "stream")
        seen += await round_trip(visitor)
        assert "visible" in text_of(seen)
        assert "quoted" in text_of(iopub) and "quoted" not in text_of(seen)  # stderr hidden from the visitor
        assert SENTINEL not in text_of(seen)
        assert "execute_input" not in {m.msg_type for m in seen}
    finally:
        await owner.close()
        await visitor.close()


async def test_private_session_shares_comms_and_status_only(server: Served, kernel: str) -> None:
    visitor = await restricted(server, kernel)
    executor = await Client.open(server.ws_url, kernel, session_id=PRIVATE)
    try:
        code = (f"print('private output {SENTINEL}')\n"
                "import comm; c = comm.create_comm(target_name='nobody', data={'x': 1})\n"
                f"raise ValueError('{SENTINEL}')")
        iopub, reply = await executor.execute(code)
        assert reply.content["status"] == "error"
        seen = await round_trip(visitor)
        private = [m for m in seen if m.parent_header.get("session") == PRIVATE]
        assert {m.msg_type for m in private} == {"status", "comm_open"}
        assert SENTINEL not in text_of(seen)
    finally:
        await executor.close()
        await visitor.close()


async def test_replay_after_reconnect_is_filtered(server: Served, kernel: str) -> None:
    session = uuid.uuid4().hex
    owner = await Client.open(server.ws_url, kernel)  # before the visitor: a new session discards the away ones
    try:
        visitor = await restricted(server, kernel, session)
        await round_trip(visitor)
        await visitor.close()
        await await_until(lambda: kernel_model(server, kernel)["connections"] == 1, "one connection")
        _, reply = await owner.execute(f"print('while away')  # {SENTINEL}")
        assert reply.content["status"] == "ok"
    finally:
        await owner.close()
    back = await restricted(server, kernel, session)
    try:
        seen = await round_trip(back)
        assert "while away" in text_of(seen)  # the buffered output was replayed ...
        assert SENTINEL not in text_of(seen)  # ... without the execute_input that carried the source
    finally:
        await back.close()


async def test_kernel_info_answered_from_the_start_while_a_cell_runs(server: Served, kernel: str,
                                                                     tmp_path: Path) -> None:
    gate = tmp_path / "go"
    owner = await Client.open(server.ws_url, kernel)
    visitor = await Client.open(server.ws_url, kernel, kernels_path="cached")
    try:
        busy = await owner.send("shell", "execute_request", {
            "code": f"import os, time\nwhile not os.path.exists({str(gate)!r}): time.sleep(0.02)",
            "silent": False, "store_history": False, "user_expressions": {}, "allow_stdin": False})
        await owner.until(lambda m: m.parent_id == busy and m.msg_type == "execute_input")  # the cell runs
        info = await visitor.send("shell", "kernel_info_request", {})
        seen = await visitor.until(lambda m: m.parent_id == info and m.content.get("execution_state") == "idle")
        mine = [m for m in seen if m.parent_id == info]
        assert [m.msg_type for m in mine] == ["status", "kernel_info_reply", "status"]
        assert mine[1].content["language_info"]["name"] == "python"
        assert not gate.exists()  # answered while the cell still runs
        gate.touch()
        _, reply = await owner.collect(busy)
        assert reply.content["status"] == "ok"
    finally:
        await owner.close()
        await visitor.close()
