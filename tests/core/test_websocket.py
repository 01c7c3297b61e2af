"""carme's websocket protocol for uvicorn (carme.websocket), on a real uvicorn on 127.0.0.1 with a
small ASGI app and the websockets library's client: messages both ways (fragmented ones too),
subprotocols, compression only when configured, max_size (1009), invalid UTF-8 (1007), both
closing handshakes, the denial response, keepalive, shutdown (1012), and reading paused and
resumed while the app does not keep up. The kernel and terminal suites run on it too (their
floods check the send side's backpressure)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Opcode
from websockets.uri import parse_uri

from carme.websocket import BIG_MESSAGE
from tests.polling import await_until
from tests.serving import serve_here

V1 = "v1.kernel.websocket.jupyter.org"


class App:
    """Echoes what it receives (``/echo``), closes with 4002 (``/close``), refuses with a 404
    body (``/deny``), or receives only once :attr:`release` is set (``/hold``); records what it
    received and the disconnect."""

    def __init__(self) -> None:
        self.received: list[str | bytes] = []
        self.disconnects: list[dict[str, Any]] = []
        self.release = asyncio.Event()
        self.nowait: list[bool] = []  # what send_nowait answered (/nowait)
        self.flooded = 0  # messages send_nowait took before it refused (/nowait)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        assert (await receive())["type"] == "websocket.connect"
        path = scope["path"]
        if path == "/deny":
            await send({"type": "websocket.http.response.start", "status": 404,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "websocket.http.response.body", "body": b'{"message": "no such thing"}'})
            return
        offered = scope["subprotocols"]
        await send({"type": "websocket.accept", "subprotocol": offered[0] if offered else None})
        if path == "/close":
            await send({"type": "websocket.close", "code": 4002, "reason": "bye"})
            return
        if path == "/hold":
            await self.release.wait()
        if path == "/nowait":
            await self.send_without_waiting(scope, receive, send)
            return
        if path == "/parts":  # echoes each binary message as two parts through send_nowait
            send_nowait = scope["extensions"]["carme.websocket"]["send_nowait"]
            while (message := await receive())["type"] != "websocket.disconnect":
                data = message["bytes"]
                self.nowait.append(send_nowait((data[:3], data[3:])))
            return
        if path == "/batch":
            await self.send_held(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                self.disconnects.append(message)
                return
            data = message.get("text") if message.get("text") is not None else message["bytes"]
            self.received.append(data)
            if path == "/echo":
                await send({"type": "websocket.send", **({"text": data} if isinstance(data, str) else {"bytes": data})})


    async def send_without_waiting(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """``/nowait``: echoes with the ``carme.websocket`` extension's ``send_nowait``; on
        "flood", sends 256 KiB messages that way until it refuses (the client does not read),
        then "done" with ``send``; records what send_nowait answered, a last time after the
        client left."""
        send_nowait = scope["extensions"]["carme.websocket"]["send_nowait"]
        while (message := await receive())["type"] != "websocket.disconnect":
            if message["text"] != "flood":
                self.nowait.append(send_nowait(message["text"]))
                continue
            sent = 0
            while send_nowait(bytes([sent % 256]) * 262144):
                sent += 1
            self.flooded = sent
            await send({"type": "websocket.send", "text": "done"})
        self.nowait.append(send_nowait("too late"))

    async def send_held(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """``/batch``: on "<n> <size> <how>", sends n numbered messages of ``size`` bytes with
        ``send_nowait(..., hold=True)``, then ends the batch ``how``: ``flush``, a ``send``
        ("sent"), a ``send_nowait`` without hold ("lone"), or a close (4003)."""
        extension = scope["extensions"]["carme.websocket"]
        send_nowait, flush = extension["send_nowait"], extension["flush"]
        while (message := await receive())["type"] != "websocket.disconnect":
            count, size, how = message["text"].split()
            for index in range(int(count)):
                self.nowait.append(send_nowait(f"{index:06d}".encode() * (int(size) // 6), True))
            if how == "flush":
                flush()
            elif how == "sent":
                await send({"type": "websocket.send", "text": "sent"})
            elif how == "lone":
                send_nowait("lone")
            elif how == "close":
                await send({"type": "websocket.close", "code": 4003})
                return


@pytest.fixture
def app() -> App:
    return App()


async def test_messages_both_ways_with_the_subprotocol_and_no_compression(app: App) -> None:
    async with serve_here(app, ws_per_message_deflate=False) as served:
        async with connect(served.ws_url + "/echo", subprotocols=[V1, "other"], compression="deflate") as ws:
            assert ws.subprotocol == V1
            assert ws.response.headers.get("Sec-WebSocket-Extensions") is None  # offered, not taken
            await ws.send("héllo")
            assert await ws.recv() == "héllo"
            await ws.send(b"\x00\xffbinary")
            assert await ws.recv() == b"\x00\xffbinary"
            await ws.send([b"frag", b"ment", b"ed"])  # one message in three frames
            assert await ws.recv() == b"fragmented"
            await ws.send(["tex", "t"])
            assert await ws.recv() == "text"
            for size in (125, 126, 65535, 65536, 100_000):  # each way of writing a frame's length
                await ws.send("é" * (size // 2) + "x" * (size % 2))
                assert await ws.recv() == "é" * (size // 2) + "x" * (size % 2)
                await ws.send(b"b" * size)
                assert await ws.recv() == b"b" * size
        await await_until(lambda: app.disconnects, "the app to hear the close")
    assert app.disconnects[0]["code"] == 1000


@pytest.mark.parametrize("deflate", [False, True])
async def test_a_big_binary_message_arrives_whole_between_small_ones(app: App, deflate: bool) -> None:
    # From BIG_MESSAGE on, the payload goes to the transport as it is, after its header (unless
    # compressed): the client reads one frame, and the messages around it in order.
    big = bytes(range(256)) * (3 * 4096 + 7)  # 3 MiB and a bit: a 64-bit length
    async with serve_here(app, ws_per_message_deflate=deflate) as served:
        async with connect(served.ws_url + "/echo", compression="deflate" if deflate else None,
                           max_size=None) as ws:
            for message in (b"before", big, b"after", big[:BIG_MESSAGE]):
                await ws.send(message)
                assert await ws.recv() == message
    assert app.received[1] == big


async def test_send_nowait_sends_a_message_given_in_parts_as_one(app: App) -> None:
    big = bytes(range(256)) * (BIG_MESSAGE // 256 + 1)
    async with serve_here(app, ws_per_message_deflate=False) as served:
        async with connect(served.ws_url + "/parts", max_size=None) as ws:
            for message in (b"small one", big, b"after"):
                await ws.send(message)
                assert await ws.recv() == message
    assert app.nowait == [True, True, True]


async def test_compression_when_configured(app: App) -> None:
    async with serve_here(app, ws_per_message_deflate=True) as served:
        async with connect(served.ws_url + "/echo", compression="deflate") as ws:
            assert "permessage-deflate" in ws.response.headers.get("Sec-WebSocket-Extensions", "")
            await ws.send("x" * 10_000)
            assert await ws.recv() == "x" * 10_000


async def test_a_message_over_max_size_closes_with_1009(app: App) -> None:
    async with serve_here(app, ws_max_size=1024) as served:
        async with connect(served.ws_url + "/echo", max_size=None) as ws:
            await ws.send(b"a" * 1024)
            assert await ws.recv() == b"a" * 1024  # at the limit: a message
            await ws.send(b"a" * 1025)
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        await await_until(lambda: app.disconnects, "the app to hear of the failure")
    assert app.disconnects[0]["code"] == 1009


async def test_invalid_utf8_text_closes_with_1007(app: App) -> None:
    async with serve_here(app) as served:
        async with connect(served.ws_url + "/echo") as ws:
            await ws.send(b"\xff\xfe", text=True)
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
    assert app.received == []


async def test_the_clients_close_reaches_the_app_with_its_code_and_reason(app: App) -> None:
    async with serve_here(app) as served:
        async with connect(served.ws_url + "/echo") as ws:
            await ws.close(4001, "done here")
        assert ws.close_code == 4001  # the server replied to the close
        await await_until(lambda: app.disconnects, "the app to hear the close")
    assert app.disconnects[0] == {"type": "websocket.disconnect", "code": 4001, "reason": "done here"}


async def test_the_apps_close_reaches_the_client(app: App) -> None:
    async with serve_here(app) as served:
        async with connect(served.ws_url + "/close") as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4002, "bye")


async def test_the_denial_response_reaches_the_client(app: App) -> None:
    async with serve_here(app) as served:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(served.ws_url + "/deny"):
                pass
    response = refused.value.response
    assert response.status_code == 404
    assert response.body == b'{"message": "no such thing"}'
    assert response.headers["content-type"] == "application/json"


async def test_a_client_that_does_not_answer_pings_is_closed(app: App) -> None:
    async with serve_here(app, ws_ping_interval=0.2, ws_ping_timeout=0.2) as served:
        # A bare sans-I/O client over a TCP stream: it reads but never answers a ping.
        client = ClientProtocol(parse_uri(served.ws_url + "/echo"))
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        client.send_request(client.connect())
        writer.write(b"".join(client.data_to_send()))
        frames = []
        while data := await reader.read(65536):
            client.receive_data(data)
            frames += [event for event in client.events_received() if hasattr(event, "opcode")]
            client.data_to_send()  # the pongs the library queued: dropped, never sent
        writer.close()
        await await_until(lambda: app.disconnects, "the app to hear of the timeout")
    assert [f.opcode for f in frames][-2:] == [Opcode.PING, Opcode.CLOSE]
    assert client.close_rcvd is not None and client.close_rcvd.code == 1011
    assert app.disconnects[0]["code"] == 1011


async def test_shutdown_closes_open_websockets_with_1012(app: App) -> None:
    async with serve_here(app) as served:
        ws = await connect(served.ws_url + "/echo")
        await ws.send("ping")
        assert await ws.recv() == "ping"
    with pytest.raises(ConnectionClosed) as closed:
        await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
    assert app.disconnects[0]["code"] == 1012


async def test_messages_wait_in_order_while_the_app_does_not_receive(app: App) -> None:
    # More than the protocol queues before it stops reading the socket (1 MiB): reading pauses
    # while the app holds, and resumes once it takes them; nothing is lost or reordered.
    messages = [f"{i:05d}".encode() * 4000 for i in range(300)]  # 20 KB each, 6 MB in all
    sent = 0
    async with serve_here(app) as served:
        async with connect(served.ws_url + "/hold") as ws:
            async def send_all() -> None:
                nonlocal sent
                for message in messages:
                    await ws.send(message)
                    sent += 1

            sending = asyncio.ensure_future(send_all())
            await await_until(lambda: sent >= 60, "the client to send 1.2 MB")  # more than the app is given
            assert app.received == []
            app.release.set()
            await await_until(lambda: len(app.received) == len(messages), "the app to receive everything")
            await sending
    assert app.received == messages


async def test_send_nowait_writes_while_the_client_keeps_up_and_refuses_when_it_would_wait(app: App) -> None:
    async with serve_here(app) as served:
        async with connect(served.ws_url + "/nowait", max_size=None) as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"
            await ws.send("flood")  # and read nothing until the app's send_nowait refuses
            await await_until(lambda: app.flooded, "send_nowait to refuse a client that does not read")
            for index in range(app.flooded):  # what it took arrived whole, in order; nothing of the refused one
                assert await ws.recv() == bytes([index % 256]) * 262144
            assert await ws.recv() == "done"
        await await_until(lambda: len(app.nowait) == 2, "the app to try once more after the close")
    assert app.nowait == [True, False]  # the echo went at once; nothing is written once the client left


@pytest.mark.parametrize("how", ["flush", "sent", "lone", "close"])
async def test_held_frames_go_out_whole_and_in_order_with_the_next_write(app: App, how: str) -> None:
    # send_nowait(..., hold=True) keeps frames to write them together: with the extension's flush,
    # or ahead of whatever is written next (a send, a send_nowait without hold, the close), and
    # on their own once they pass HOLD_BYTES (the 300 KB batch). Nothing is lost or reordered.
    async with serve_here(app) as served:
        async with connect(served.ws_url + "/batch", max_size=None) as ws:
            for count, size in [(1, 6), (50, 60), (30, 10_002), (3, 70_002)]:
                await ws.send(f"{count} {size} {how}")
                for index in range(count):
                    assert await ws.recv() == f"{index:06d}".encode() * (size // 6)
                if how == "close":
                    with pytest.raises(ConnectionClosed) as closed:
                        await ws.recv()
                    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4003
                    break
                if how != "flush":
                    assert await ws.recv() == how  # the write that took the held frames along
    assert all(app.nowait)
