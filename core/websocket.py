"""carme's websocket protocol for uvicorn: ASGI glue over the websockets library's sans-I/O server.

uvicorn's own implementations pay for generality on every message: the legacy one takes a lock and
a future per send and runs a task per connection to read frames; the sans-I/O one pauses and
resumes reading the socket around every received message (two ``epoll_ctl`` calls per keystroke
of a terminal). A kernel relay or a terminal sends many small messages, so here:

- a send serializes the frame with the library and writes it to the transport at once; it awaits
  only while the transport's write buffer is above its high-water mark (``pause_writing``), which
  is the backpressure the kernel relay and terminals rely on: a slow client makes its sender wait.
  ``send_nowait``, offered to apps as the ASGI extension ``carme.websocket``, writes at once
  from plain code when no wait is needed (and says when one is); with ``hold=True`` it keeps the
  frame until the extension's ``flush`` (or the next write of any kind), so the messages an app
  sends in one go leave in one system call (the kernel relay holds the frames of each batch of
  kernel messages it reads);
- received messages go to a queue the app's ``receive`` reads; reading the socket pauses only
  when the app lets more than :data:`READ_HIGH_MESSAGES` messages or :data:`READ_HIGH_BYTES` bytes
  pile up, and resumes once it has taken them all.

Everything about the protocol itself stays the library's (``websockets.server.ServerProtocol``)
but the header of an outgoing data frame while no extension is in use (2 to 10 bytes, unmasked,
one frame per message: RFC 6455 5.2, made here because the library's frame objects cost more
than the rest of a relayed message): the opening handshake and its checks, frame parsing and
unmasking (its C speedups), ``max_size``
(1009), control frames (a ping is answered by the library), close codes and the closing
handshake. What uvicorn's ASGI websocket interface asks of a server is kept: subprotocol and
headers chosen by the app on accept, the denial response extension
(``websocket.http.response``), keepalive pings (``ws_ping_interval``/``ws_ping_timeout``),
permessage-deflate when ``ws_per_message_deflate`` is on (carme turns it off), and shutdown
(close 1012 to every open websocket, then uvicorn's graceful-shutdown timeout for the apps).

Used as uvicorn's ``ws`` setting (:data:`carme.running.WEBSOCKET_PROTOCOL`).
"""

from __future__ import annotations

import asyncio
import email.utils
import http
import logging
import os
import struct
from collections import deque
from typing import Any, cast
from urllib.parse import unquote

from uvicorn.config import Config
from uvicorn.protocols.utils import (
    ClientDisconnected,
    get_client_addr,
    get_local_addr,
    get_path_with_query_string,
    get_remote_addr,
    is_ssl,
)
from uvicorn.server import ServerState
from websockets.datastructures import Headers
from websockets.exceptions import InvalidState
from websockets.extensions.base import ServerExtensionFactory
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

# Reading the socket pauses while the app has this much received and not yet taken.
READ_HIGH_MESSAGES = 64
READ_HIGH_BYTES = 1 << 20
CLOSE_TIMEOUT = 10.0  # seconds to wait for the client's reply to a close before dropping the connection
# Frames held by ``send_nowait(..., hold=True)`` are written once they pass this many bytes: past
# a few TCP segments one write more costs nothing worth saving, and the transport's high-water
# mark (the backpressure) must see them.
HOLD_BYTES = 65536
# The ASGI extension (in scope["extensions"]) with ``send_nowait`` and ``flush``. A middleware that changes what
# an app sends on a websocket must remove it, or messages written this way pass it by.
EXTENSION = "carme.websocket"

TEXT = Opcode.TEXT
BINARY = Opcode.BINARY
CONT = Opcode.CONT
CLOSE = Opcode.CLOSE
PONG = Opcode.PONG
OPEN = State.OPEN
# The first byte of an unfragmented data frame (FIN set, no RSV bits) and the extended lengths.
FIN_TEXT = 0x80 | Opcode.TEXT.value
FIN_BINARY = 0x80 | Opcode.BINARY.value
LENGTH_16 = struct.Struct("!BBH")
LENGTH_64 = struct.Struct("!BBQ")
# A message this big goes to the transport as the app's bytes themselves, after its header: joined to
# it, a collab room's 19 MB SyncStep2 would be copied once more (~10 ms, most of it page faults).
BIG_MESSAGE = 1 << 20

Message = dict[str, Any]


def _frame_head(first: int, size: int) -> bytes:
    """The header of an unmasked data frame: ``first`` byte (FIN and opcode), then the length."""
    return (bytes((first, size)) if size < 126 else
            LENGTH_16.pack(first, 126, size) if size < 65536 else LENGTH_64.pack(first, 127, size))


class WebSocketProtocol(asyncio.Protocol):
    """One websocket connection, handed over by uvicorn's HTTP protocol after the upgrade request.

    uvicorn makes it with ``(config, server_state, app_state)``, calls ``connection_made`` and
    feeds it the request's bytes; ``shutdown`` is called by uvicorn's server at exit."""

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        if not config.loaded:
            config.load()
        self.config = config
        self.app = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.logger = logging.getLogger("uvicorn.error")
        self.app_state = app_state
        self.connections = server_state.connections
        self.tasks = server_state.tasks
        self.default_headers = server_state.default_headers

        extensions: list[ServerExtensionFactory] = []
        if config.ws_per_message_deflate:  # uvicorn's settings for it
            extensions.append(ServerPerMessageDeflateFactory(server_max_window_bits=12, client_max_window_bits=12,
                                                             compress_settings={"memLevel": 5}))
        self.conn = ServerProtocol(extensions=extensions, max_size=config.ws_max_size, logger=self.logger)

        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.scope: dict[str, Any] = {}
        self.response: Response | None = None  # the 101 the library made, sent on websocket.accept
        self.handshake_complete = False  # accepted, or refused: no more handshake messages
        self.open = False  # accepted, and neither side has closed: the app may send
        self.close_sent = False  # closing: by the app, the client, the server or a failure
        self.app_closed = False  # the app sent websocket.close (a send after it is the app's error)
        self.disconnected = False  # the TCP connection is gone
        self._denial: tuple[int, list[tuple[str, str]], list[bytes]] | None = None

        # To the app: received messages, their size, and the receive waiting for one.
        self._queue: deque[tuple[Message, int]] = deque()
        self._queued_bytes = 0
        self._waiter: asyncio.Future[None] | None = None
        self._read_paused = False
        self._fragments: list[bytes] = []
        self._fragments_text = False

        self._drained: asyncio.Future[None] | None = None  # set while the transport's buffer is full
        self._held: list[bytes] = []  # frames send_nowait was asked to hold, not written yet
        self._held_bytes = 0
        self._close_timer: asyncio.TimerHandle | None = None

        self.ping_interval = config.ws_ping_interval
        self.ping_timeout = config.ws_ping_timeout
        self._ping_timer: asyncio.TimerHandle | None = None
        self._pong_timer: asyncio.TimerHandle | None = None
        self._ping_payload: bytes | None = None

    # -- transport callbacks ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.disconnected = True
        self.handshake_complete = True
        self.open = False
        self._stop_timers()
        self.connections.discard(self)
        self._take_held()  # nowhere to go now
        self._to_app({"type": "websocket.disconnect", "code": 1006}, 0)
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():  # a paused transport is never resumed once lost
            drained.set_result(None)

    def eof_received(self) -> None:
        pass  # the transport closes; connection_lost tells the app

    def pause_writing(self) -> None:
        if self._drained is None:
            self._drained = self.loop.create_future()

    def resume_writing(self) -> None:
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        conn.receive_data(data)
        for event in conn.events_received():
            if event.__class__ is Frame:
                self._frame(cast(Frame, event))
            elif isinstance(event, Request):
                self._request(event)
        if conn.parser_exc is not None and not self.close_sent:
            # The library failed the connection (too big: 1009, protocol error: 1002, ...).
            close = conn.close_sent
            self.close_sent, self.open = True, False
            self._to_app({"type": "websocket.disconnect", "code": close.code if close else 1006,
                          "reason": close.reason if close else ""}, 0)
        self._flush()

    def _flush(self) -> None:
        """Write what the library has to send (after any held frames); close the connection when
        it says so (EOF)."""
        writes = self.conn.data_to_send()
        if writes:
            transport = self.transport
            if self._held:
                writes = [*self._take_held(), *writes]
            transport.write(b"".join(writes))
            if not writes[-1]:  # the library's end-of-stream marker
                self._stop_timers()
                transport.close()
        elif self._held:
            self.flush()

    def _take_held(self) -> list[bytes]:
        held, self._held = self._held, []
        self._held_bytes = 0
        return held

    # -- received frames --------------------------------------------------------------------

    def _frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is TEXT or opcode is BINARY:
            if frame.fin:
                self._message(opcode is TEXT, frame.data)
            else:
                self._fragments = [bytes(frame.data)]
                self._fragments_text = opcode is TEXT
        elif opcode is CONT:
            self._fragments.append(bytes(frame.data))
            if frame.fin:
                data, self._fragments = b"".join(self._fragments), []
                self._message(self._fragments_text, data)
        elif opcode is CLOSE:
            if self.close_sent:  # the client's reply to our close: the library ends the connection
                return
            self.close_sent, self.open = True, False  # the library replied to it
            close = self.conn.close_rcvd
            self._to_app({"type": "websocket.disconnect", "code": close.code if close else 1005,
                          "reason": close.reason if close else ""}, 0)
        elif opcode is PONG:
            self._pong(bytes(frame.data))
        # PING: the library queued the pong; data_received writes it.

    def _message(self, text: bool, data: bytes | bytearray | memoryview) -> None:
        if self.close_sent:
            return  # the app closed: drop until the client's close arrives
        if text:
            try:
                decoded = bytes(data).decode()
            except UnicodeDecodeError as exc:
                self.conn.fail(1007, f"{exc.reason} at position {exc.start}")
                self.close_sent, self.open = True, False
                self._to_app({"type": "websocket.disconnect", "code": 1007, "reason": ""}, 0)
                return
            self._to_app({"type": "websocket.receive", "text": decoded}, len(data))
        else:
            self._to_app({"type": "websocket.receive", "bytes": bytes(data)}, len(data))
        if not self._read_paused and (len(self._queue) >= READ_HIGH_MESSAGES or self._queued_bytes >= READ_HIGH_BYTES):
            self._read_paused = True
            self.transport.pause_reading()

    def _to_app(self, message: Message, size: int) -> None:
        self._queue.append((message, size))
        self._queued_bytes += size
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- the ASGI app -----------------------------------------------------------------------

    def _request(self, request: Request) -> None:
        conn = self.conn
        response = conn.accept(request)
        if response.status_code != 101:  # not a valid websocket handshake: the library's answer
            self.handshake_complete = self.close_sent = True
            conn.send_response(response)
            return
        self.response = response
        headers = [(key.encode("ascii"), value.encode("latin-1")) for key, value in request.headers.raw_items()]
        raw_path, _, query = request.path.partition("?")
        subprotocols = [token.strip() for header in request.headers.get_all("Sec-WebSocket-Protocol")
                        for token in header.split(",")]
        server = get_local_addr(self.transport)
        client = get_remote_addr(self.transport)
        root_path = self.config.root_path
        self.scope = {
            "type": "websocket",
            "asgi": {"version": self.config.asgi_version, "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": "wss" if is_ssl(self.transport) else "ws",
            "server": server,
            "client": client,
            "root_path": root_path,
            "path": root_path + unquote(raw_path),
            "raw_path": root_path.encode("ascii") + raw_path.encode("ascii"),
            "query_string": query.encode("ascii"),
            "headers": headers,
            "subprotocols": subprotocols,
            "state": self.app_state.copy(),
            "extensions": {"websocket.http.response": {}},
        }
        self._to_app({"type": "websocket.connect"}, 0)
        self.scope["extensions"][EXTENSION] = {"send_nowait": self.send_nowait, "flush": self.flush}
        task = self.loop.create_task(self._run_app())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run_app(self) -> None:
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except BaseException:
            self.logger.exception("Exception in ASGI application\n")
            self._refuse(500)
            if self.open:
                self._close(1011, "")  # as uvicorn's legacy server: the endpoint failed
        else:
            if not self.handshake_complete:
                self.logger.error("ASGI callable returned without completing handshake.")
                self._refuse(500)
            elif result is not None:
                self.logger.error("ASGI callable should return None, but returned '%s'.", result)
        if self.disconnected:
            return
        if self.open:
            self._close(1000, "")  # the app returned without closing: close politely, as uvicorn's legacy server does
        elif self._close_timer is None:
            self.transport.close()

    def _refuse(self, status: int) -> None:
        """An HTTP response instead of the upgrade (before the app accepted)."""
        if self.handshake_complete or self.disconnected:
            return
        self.handshake_complete = self.close_sent = True
        self.conn.send_response(self.conn.reject(status, http.HTTPStatus(status).phrase if status != 403 else ""))
        self._flush()

    async def receive(self) -> Message:
        queue = self._queue
        if not queue:
            if self.disconnected and self.handshake_complete:
                return {"type": "websocket.disconnect", "code": 1006}
            waiter = self._waiter = self.loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        message, size = queue.popleft()
        self._queued_bytes -= size
        if self._read_paused and not queue and not self.disconnected:
            self._read_paused = False
            self.transport.resume_reading()
        return message

    def send_nowait(self, data: bytes | bytearray | str | tuple[bytes, ...], hold: bool = False) -> bool:
        """Write one message (bytes: binary, str: text) at once and return True, when the
        websocket is open and its transport takes more without waiting; else write nothing and
        return False (``await send`` it then). Offered to the app as the ASGI extension
        :data:`EXTENSION`: a kernel relay writes most messages this way, without a task switch.

        ``hold=True``: the frame is made now and kept to go out with the next write (:meth:`flush`,
        a ``send_nowait`` without hold, ``send``, a control frame, the close), or once held frames
        pass :data:`HOLD_BYTES`; the caller must :meth:`flush` before it yields to the event loop.

        A tuple of bytes is one binary message in parts (never held): a big one is written as
        its parts themselves after its header, not joined into one buffer (a collab room's
        SyncStep2 is a few header bytes and a document of tens of MB)."""
        if not self.open or self._drained is not None:
            return False
        if isinstance(data, tuple):
            self._write_parts(data)
        else:
            self._write(data, hold)
        return True

    def _write_parts(self, parts: tuple[bytes, ...]) -> None:
        if self.conn.state is not OPEN or self.conn.extensions:
            self._write(b"".join(parts))
            return
        self.flush()  # what is held goes first
        size = sum(map(len, parts))
        writes = [_frame_head(FIN_BINARY, size), *parts]
        if size >= BIG_MESSAGE:
            for chunk in writes:
                self.transport.write(chunk)
        else:
            self.transport.write(b"".join(writes))

    def flush(self) -> None:
        """Write the frames held by ``send_nowait(..., hold=True)``, in one system call."""
        if self._held and not self.disconnected:
            self.transport.write(b"".join(self._take_held()))

    def _write(self, data: bytes | bytearray | str, hold: bool = False) -> None:
        conn = self.conn
        if conn.state is OPEN and not conn.extensions:
            if isinstance(data, str):
                data, first = data.encode(), FIN_TEXT
            else:
                first = FIN_BINARY
            writes = [_frame_head(first, len(data)), data]
        else:  # compression on, or not open (the library raises InvalidState)
            if isinstance(data, str):
                conn.send_text(data.encode())
            else:
                conn.send_binary(data)
            writes = conn.data_to_send()
        if hold:
            self._held += writes
            self._held_bytes += len(data)
            if self._held_bytes >= HOLD_BYTES:
                self.flush()
        elif self._held:
            self._held += writes
            self.flush()
        elif len(data) >= BIG_MESSAGE:  # joined to its header, the payload would be copied once more
            for chunk in writes:
                self.transport.write(chunk)
        else:
            self.transport.write(b"".join(writes))

    async def send(self, message: Message) -> None:
        # The hot path first: a message on an open websocket, written at once.
        if self.open and message["type"] == "websocket.send":
            if self._drained is not None:
                await self._drained  # the client reads slower than we write: wait for it
                if not self.open:
                    self._not_open("websocket.send")
            data = message.get("bytes")
            if data is None:
                data = message.get("text")
                if data is None:
                    return
            try:
                self._write(data)
            except InvalidState:  # the client closed meanwhile
                raise ClientDisconnected() from None
            return
        kind = message["type"]
        if self.disconnected:
            raise ClientDisconnected()
        if not self.handshake_complete:
            self._handshake(message)
        elif self._denial is not None:
            self._denial_body(message)
        elif kind == "websocket.close" and self.open:
            code = message.get("code") or 1000
            reason = message.get("reason") or ""
            self.app_closed = True
            self._to_app({"type": "websocket.disconnect", "code": code, "reason": reason}, 0)
            self._close(code, reason)
        elif kind == "websocket.close" and not self.app_closed:
            pass  # the client closed first, or left: nothing left to close
        else:
            self._not_open(kind)

    def _not_open(self, kind: str) -> None:
        """A message for a websocket that is not open (any more): uvicorn's errors for it."""
        if self.app_closed:
            raise RuntimeError(f"Unexpected ASGI message '{kind}', after sending 'websocket.close'.")
        if kind in ("websocket.send", "websocket.close"):
            raise ClientDisconnected()
        raise RuntimeError(f"Unexpected ASGI message '{kind}' on an accepted websocket.")

    def _handshake(self, message: Message) -> None:
        kind = message["type"]
        scope = self.scope
        if kind == "websocket.accept":
            response = self.response
            assert response is not None
            self.logger.info('%s - "WebSocket %s" [accepted]', get_client_addr(scope),  # type: ignore[arg-type]
                             get_path_with_query_string(scope))  # type: ignore[arg-type]
            headers = [(name.decode("latin-1").lower(), value.decode("latin-1"))
                       for name, value in [*self.default_headers, *message.get("headers", [])]]
            if message.get("subprotocol"):
                headers.append(("Sec-WebSocket-Protocol", message["subprotocol"]))
            del response.headers["Date"]  # uvicorn's default headers carry one
            response.headers.update(headers)
            self.handshake_complete = True
            self.response = None
            if self.disconnected or self.transport.is_closing():
                return
            self.open = True
            self.conn.send_response(response)
            self._flush()
            self._schedule_ping()
        elif kind == "websocket.close":
            self.logger.info('%s - "WebSocket %s" 403', get_client_addr(scope),  # type: ignore[arg-type]
                             get_path_with_query_string(scope))  # type: ignore[arg-type]
            self._to_app({"type": "websocket.disconnect", "code": 1006}, 0)
            self._refuse(403)
        elif kind == "websocket.http.response.start":
            status = message["status"]
            if not 100 <= status < 600:
                raise RuntimeError(f"Invalid HTTP status code '{status}' in response.")
            self.logger.info('%s - "WebSocket %s" %d', get_client_addr(scope),  # type: ignore[arg-type]
                             get_path_with_query_string(scope), status)  # type: ignore[arg-type]
            headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in message.get("headers", [])]
            self._denial = (status, headers, [])
            self.handshake_complete = True
            self.response = None
        else:
            raise RuntimeError("Expected ASGI message 'websocket.accept', 'websocket.close' or "
                               f"'websocket.http.response.start' but got '{kind}'.")

    def _denial_body(self, message: Message) -> None:
        assert self._denial is not None
        if message["type"] != "websocket.http.response.body":
            raise RuntimeError(f"Expected ASGI message 'websocket.http.response.body' but got '{message['type']}'.")
        status, headers, body = self._denial
        body.append(message.get("body", b""))
        if message.get("more_body", False) or self.close_sent:
            return
        data = b"".join(body)
        response_headers = Headers(headers)
        response_headers.setdefault("Date", email.utils.formatdate(usegmt=True))
        response_headers.setdefault("Connection", "close")
        response_headers.setdefault("Content-Length", str(len(data)))
        response_headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        try:
            phrase = http.HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        self.close_sent = True
        self._to_app({"type": "websocket.disconnect", "code": 1006}, 0)
        if not self.disconnected:
            self.conn.send_response(Response(status, phrase, response_headers, data))
            self._flush()

    def _close(self, code: int, reason: str) -> None:
        """Start the closing handshake; the client's reply (or :data:`CLOSE_TIMEOUT`) ends it."""
        self.close_sent, self.open = True, False
        self._stop_timers()
        self.conn.send_close(code, reason)
        self._flush()
        if self._read_paused:  # the reply must be read
            self._read_paused = False
            self.transport.resume_reading()
        self._close_timer = self.loop.call_later(CLOSE_TIMEOUT, self.transport.close)

    # -- keepalive and shutdown -------------------------------------------------------------

    def _schedule_ping(self) -> None:
        if self.ping_interval and not self.disconnected:
            self._ping_timer = self.loop.call_later(self.ping_interval, self._ping)

    def _ping(self) -> None:
        self._ping_timer = None
        if not self.open:
            return
        self._ping_payload = os.urandom(4)  # a pong must echo it: stale or unsolicited pongs are ignored
        self.conn.send_ping(self._ping_payload)
        self._flush()
        if self.ping_timeout:
            self._pong_timer = self.loop.call_later(self.ping_timeout, self._pong_missed)
        else:
            self._schedule_ping()

    def _pong(self, payload: bytes) -> None:
        if self._ping_payload is None or payload != self._ping_payload:
            return
        self._ping_payload = None
        if self._pong_timer is not None:
            self._pong_timer.cancel()
            self._pong_timer = None
            self._schedule_ping()

    def _pong_missed(self) -> None:
        self._pong_timer = None
        if not self.open:
            return
        self.close_sent, self.open = True, False
        self.conn.fail(1011, "keepalive ping timeout")
        self._to_app({"type": "websocket.disconnect", "code": 1011, "reason": "keepalive ping timeout"}, 0)
        self._flush()

    def _stop_timers(self) -> None:
        for timer in (self._ping_timer, self._pong_timer, self._close_timer):
            if timer is not None:
                timer.cancel()
        self._ping_timer = self._pong_timer = self._close_timer = None
        self._ping_payload = None

    def shutdown(self) -> None:
        """uvicorn is stopping: close an open websocket with 1012 (the app hears a disconnect)."""
        if self.disconnected:
            return
        if self.close_sent:
            self._stop_timers()
            self.transport.close()
            return
        if self.open:
            self.close_sent, self.open = True, False
            self._to_app({"type": "websocket.disconnect", "code": 1012}, 0)
            self._stop_timers()
            self.conn.send_close(1012)
            self._flush()
        else:
            self._refuse(500)
        self.transport.close()

