"""The kernel websocket ``/api/kernels/{kernel_id}/channels``: a thin ASGI adapter over the relay.

Handshake as jupyter_server: an unknown kernel is refused before the upgrade (404 JSON); the
``v1.kernel.websocket.jupyter.org`` subprotocol is selected when the client offers it, the legacy
JSON protocol otherwise; the client's ``session_id`` query parameter names it for replies and for
replay after a reconnect. Authentication and the websocket origin check happen in the auth
middleware before this runs.

The route is a raw ASGI app rather than a Starlette websocket endpoint: every relayed message goes
through ``send``, and the fewer layers there the better. TCP_NODELAY is set on accepted sockets by
the event loop itself (asyncio's selector transports and uvloop both do), so replies are not held
back by Nagle's algorithm as they were in jupyter_server. Messages from the client larger than the
``websocket_max_message_size`` setting close the socket with 1009 (uvicorn enforces its own
``ws_max_size`` too, which ``carme serve`` sets from the same setting).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import zmq
from starlette.types import Receive, Scope, Send

from ..errors import refuse_websocket
from ..kernels.clients import ClientRegistry, KernelClients
from ..kernels.connection import channel_url, open_socket
from ..kernels.frames import V1_SUBPROTOCOL, select_subprotocol
from ..kernels.kernel import KernelDeadError
from ..kernels.policy import MessagePolicy
from ..kernels.ratelimit import RateLimits
from ..kernels.relay import Outgoing, RelayOptions, SinkClosed

if TYPE_CHECKING:
    from ..kernels.kernel import Kernel
    from ..server import Server

log = logging.getLogger("carme.api.kernel_ws")

ASGI_SEND = "websocket.send"
NOWAIT_EXTENSION = "carme.websocket"  # carme.websocket.EXTENSION, offered by carme's websocket protocol


class AsgiSink:
    """The relay's :class:`~carme.kernels.relay.Sink` over an ASGI websocket ``send``.

    The websocket is gone once the endpoint has received its disconnect or sent a close, or when
    the ASGI server refuses the send: uvicorn raises ``ClientDisconnected`` (an OSError) for a lost
    connection, and RuntimeError when it closed the websocket itself (a keepalive ping timeout)
    before the endpoint saw the disconnect. Sends then raise :class:`SinkClosed`; a failure
    anywhere else (encoding, the relay) is a fault the relay logs.
    """

    __slots__ = ("_send", "_nowait", "_flush", "closed", "_accepting")

    def __init__(self, send: Send, scope: Scope | None = None, accepted: bool = True) -> None:
        """``accepted=False``: the endpoint sends the accept later, through :meth:`accept`; frames
        wait for it (the relay may queue messages for a client it registered before the accept)."""
        self._send = send
        self._accepting: asyncio.Event | None = None if accepted else asyncio.Event()
        # carme's websocket protocol writes a frame without a coroutine when it need not wait.
        offered = (scope or {}).get("extensions", {}).get(NOWAIT_EXTENSION)
        self._nowait: Callable[[bytes | str, bool], bool] | None = offered["send_nowait"] if offered else None
        self._flush: Callable[[], None] | None = offered["flush"] if offered else None
        self.closed = False

    def send_nowait(self, frame: bytes | str, hold: bool = False) -> bool:
        """Write ``frame`` at once and return True when the websocket takes it without waiting;
        False (nothing written) when it would wait, is closed, or the server cannot say: then
        :meth:`send` it. ``hold``: the frame may wait for :meth:`flush` (or the next write)."""
        if self.closed or self._nowait is None or self._accepting is not None:
            return False
        try:
            return self._nowait(frame, hold)
        except (OSError, RuntimeError):
            return False  # the websocket is going: send says so

    def flush(self) -> None:
        """Write the frames held by ``send_nowait(..., hold=True)``."""
        if self._flush is not None and not self.closed:
            try:
                self._flush()
            except (OSError, RuntimeError):
                pass  # the websocket is going: the next send says so

    async def accept(self, subprotocol: str | None) -> None:
        """Accept the websocket; frames waiting for the accept go out after it. Nothing is sent
        when the sink was closed first (the close refused the websocket: the endpoint then
        receives its disconnect)."""
        accepting = self._accepting
        try:
            if not self.closed:
                await self._send({"type": "websocket.accept", "subprotocol": subprotocol})
        except (OSError, RuntimeError):
            self.closed = True
            raise
        finally:
            self._accepting = None
            if accepting is not None:
                accepting.set()

    def abandon(self) -> None:
        """The websocket will not be accepted (the endpoint failed first): frames waiting for the
        accept are refused (:class:`SinkClosed`)."""
        self.closed = True
        accepting, self._accepting = self._accepting, None
        if accepting is not None:
            accepting.set()

    async def send(self, frame: bytes | str) -> None:
        if self._accepting is not None:
            await self._accepting.wait()
        if self.closed:
            raise SinkClosed("websocket closed")
        try:
            if frame.__class__ is bytes:
                await self._send({"type": ASGI_SEND, "bytes": frame})
            else:
                await self._send({"type": ASGI_SEND, "text": frame})
        except (OSError, RuntimeError) as exc:
            self.closed = True
            raise SinkClosed(f"the ASGI server refused the send: {exc!r}") from exc

    async def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        accepting, self._accepting = self._accepting, None
        if accepting is not None:  # closed before the accept: a refusal; frames waiting are refused
            accepting.set()
        try:
            await self._send({"type": "websocket.close", "code": code, "reason": reason})
        except (OSError, RuntimeError):
            pass  # closed by the server or the client already: nothing left to close


class KernelWebsockets:
    """The websocket clients of every kernel of one app, and the ASGI endpoint that adds them."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.registry = ClientRegistry()
        self._tasks: set[asyncio.Future[Any]] = set()

    # -- settings ---------------------------------------------------------------------------

    def options(self, kernel: Kernel) -> RelayOptions:
        settings = self.server.settings
        limits = RateLimits(msg_rate=settings["iopub_msg_rate_limit"], data_rate=settings["iopub_data_rate_limit"],
                            window=settings["rate_limit_window"])
        return RelayOptions(
            rate_limits=limits,
            buffer_max_messages=settings["buffer_offline_max_messages"],
            buffer_max_bytes=settings["buffer_offline_max_bytes"],
            connect_timeout=kernel.options.kernel_info_timeout,
        )

    # -- kernels ----------------------------------------------------------------------------

    def _open_socket(self, kernel: Kernel, channel: str, identity: bytes | None) -> tuple[zmq.Socket[Any], str]:
        # Request sockets only (shell, control, stdin): iopub is read once, by the kernel. Plain
        # sockets (the relay watches their file descriptors) on the kernels' context, left for the
        # relay to connect, with an unlimited receive queue: replies wait there while the client
        # is slow, never dropped.
        info = kernel.connection_info
        sock = open_socket(self.server.kernels.context, info, channel, identity, socket_class=zmq.Socket, rcvhwm=0,
                           connect=False)
        return sock, channel_url(info, channel)

    def clients_of(self, kernel: Kernel) -> KernelClients:
        def make() -> KernelClients:
            clients = KernelClients(kernel.id, kernel.session,
                                    lambda channel, identity: self._open_socket(kernel, channel, identity),
                                    self.options(kernel), kernel.subscribe,
                                    self.server.settings["buffer_offline_messages"], kernel.client_message,
                                    kernel.on_send_to_client, lambda: kernel.transport, kernel.on_flush)
            info = dict(kernel.connection_info)
            transport = kernel.transport

            def on_lifecycle(event: str) -> None:
                nonlocal info, transport
                if event == "restarted" and (kernel.connection_info != info or kernel.transport is not transport):
                    info = dict(kernel.connection_info)
                    transport = kernel.transport
                    self._background(clients.reopen())
                if event in ("shutdown", "dead") and self.registry.get(kernel.id) is clients:
                    self._background(self.registry.forget(kernel.id))

            kernel.on_lifecycle(on_lifecycle)
            return clients

        return self.registry.ensure(kernel.id, make)

    def _background(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        await self.registry.close()

    # -- the endpoint -----------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The route declares read on kernels (checked before this runs); execute decides whether
        # this user runs code or only watches (carme_permission is asked once per connection).
        policy = None
        user = scope.get("user")
        kernel_id = scope["path_params"]["kernel_id"]
        authorizer = self.server.authorizer
        denied_by = await authorizer.decide(user, "execute", "kernels")
        if denied_by is not None:
            def audit(msg_type: str) -> None:
                authorizer.publish(user, "execute", "kernels", None, denied_by,
                                   f"{msg_type} refused on kernel {kernel_id}")

            policy = MessagePolicy.read_only(f"user {getattr(user, 'username', '?')} (read-only)",
                                             comms=self.server.settings["read_only_comms"], on_refused=audit)
        await self.serve(scope, receive, send, kernel_id, policy)

    async def serve(self, scope: Scope, receive: Receive, send: Send, kernel_id: str,
                    policy: MessagePolicy | None = None) -> None:
        """Run one websocket as a client of ``kernel_id`` until it closes.

        The core's route passes no ``policy`` (full access) to a user who may execute on kernels,
        a read-only one to a user who may not. An extension's restricted endpoint
        (dashboards' visitor websocket) does its own checks first, then calls this with the
        :class:`~carme.kernels.policy.MessagePolicy` of that connection.
        """
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        kernels = self.server.kernels
        kernel = kernels.get(kernel_id) if kernel_id in kernels else None
        if kernel is None:
            await deny(scope, send, 404, f"Kernel does not exist: {kernel_id}")
            return
        # A kernel still starting (pending kernels) is joined at once: the client is told it is
        # starting and wired once it is ready. Otherwise (a restart in progress) wait before the upgrade.
        early = kernels.starting(kernel)
        if not early:
            try:
                await kernel.wait_ready()
            except KernelDeadError as exc:  # it died, or was shut down, while (re)starting
                await deny(scope, send, 500, f"Kernel {kernel_id} is not available: {exc}")
                return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        session_id = (query.get("session_id") or [""])[0]
        subprotocol = select_subprotocol(scope.get("subprotocols") or [])
        v1 = subprotocol == V1_SUBPROTOCOL
        sink = AsgiSink(send, scope, accepted=False)
        accepted = False
        client = None
        clients: KernelClients | None = None
        held: list[Message] = []
        next_message: asyncio.Future[Message] | None = None  # a receive begun while the kernel started
        max_size = self.server.settings["websocket_max_message_size"]
        try:
            if early:
                # Told "starting" at once, so accepted first, and registered once the kernel is
                # ready: what the kernel sends between its ready and the registration (no await
                # in between unless another connect holds the kernel's clients or clients that went
                # away are discarded) is its start-up status, which the status posted below sums up.
                await sink.accept(subprotocol)
                accepted = True
                kernel.connections += 1
                waited = await self._await_start(kernel, receive, sink, v1, held)
                if waited is None:
                    return
                next_message = waited
            clients = self.clients_of(kernel)
            # Registered before the accept: from the moment the client sees its websocket open, every
            # message of the kernel is queued for it (the sink holds them until the accept is sent);
            # accepted first, what the kernel sent while the accept was on its way would be lost.
            client = await clients.connect(_identity_safe(session_id), sink, v1, policy)
            if early:  # it is ready: the client hears so as jupyter_server's clients hear the nudge's status
                client.post(status_message(kernel, kernel.execution_state))
            else:
                await sink.accept(subprotocol)
                accepted = True
                kernel.connections += 1
            while True:
                if held:
                    message = held.pop(0)
                elif next_message is not None:
                    message, next_message = await next_message, None
                else:
                    message = await receive()
                kind = message["type"]
                if kind == "websocket.receive":
                    data = message.get("bytes")
                    if data is None:
                        data = message.get("text") or ""
                    if len(data) > max_size:
                        log.warning("kernel %s: closing websocket: a %d-byte message is over the "
                                    "websocket_max_message_size limit of %d bytes", kernel_id, len(data), max_size)
                        await sink.close(1009, "message too big")
                        break
                    await client.from_client(data)
                elif kind == "websocket.disconnect":
                    sink.closed = True  # before anything else runs: the relay must not send any more
                    if message.get("code") == 1009:
                        log.warning("kernel %s: websocket closed: a message was over the server's size limit "
                                    "(uvicorn ws_max_size)", kernel_id)
                    break
        finally:
            if next_message is not None:
                next_message.cancel()
            if accepted:
                kernel.connections -= 1
            else:
                sink.abandon()  # frames queued for it while it was not yet accepted are refused
            if client is not None and clients is not None:
                await clients.disconnect(client, sink)

    async def _await_start(self, kernel: Kernel, receive: Receive, sink: AsgiSink, v1: bool,
                           held: list[Message]) -> asyncio.Future[Message] | None:
        """Tell the client ``kernel`` is starting and wait for its start, keeping what the client
        sends meanwhile in ``held``. Returns the receive still in progress (the caller awaits it
        next), or None when the client left or the start failed (then the client was told
        ``dead`` and the websocket is closed with the reason)."""
        incoming: asyncio.Future[Message] = asyncio.ensure_future(receive())
        ready = asyncio.ensure_future(kernel.wait_ready())
        try:
            await sink.send(status_message(kernel, "starting").frame(v1))
            while not ready.done():
                await asyncio.wait({ready, incoming}, return_when=asyncio.FIRST_COMPLETED)
                if incoming.done():
                    message = incoming.result()
                    if message["type"] == "websocket.disconnect":
                        sink.closed = True
                        return None
                    held.append(message)
                    incoming = asyncio.ensure_future(receive())
            try:
                ready.result()
            except KernelDeadError as exc:
                log.warning("kernel %s: closing a websocket that waited for its start: %s", kernel.id, exc)
                await sink.send(status_message(kernel, "dead").frame(v1))
                await sink.close(1011, _close_reason(f"kernel failed to start: {kernel.reason or exc}"))
                return None
            waiting, incoming = incoming, None  # type: ignore[assignment]
            return waiting
        except SinkClosed:
            return None
        finally:
            ready.cancel()
            if incoming is not None:
                incoming.cancel()


Message = dict[str, Any]


def status_message(kernel: Kernel, state: str) -> Outgoing:
    """A synthetic iopub status of ``kernel`` (``starting`` while it starts), for one client."""
    msg = kernel.synthetic_status(state)
    return Outgoing(b"iopub", msg.frames, msg.header)


def _close_reason(text: str) -> str:
    """A websocket close reason: at most 123 bytes of UTF-8."""
    data = text.encode("utf-8")
    return text if len(data) <= 123 else data[:120].decode("utf-8", "ignore") + "..."


def _identity_safe(session_id: str) -> str:
    """ZMQ identities are 1-255 bytes: a longer session id is replaced by its digest."""
    if len(session_id.encode("utf-8")) > 255:
        return hashlib.sha256(session_id.encode("utf-8")).hexdigest()
    return session_id


async def deny(scope: Scope, send: Send, status: int, message: str) -> None:
    """Refuse a websocket before the upgrade (logged: the client may only see the status)."""
    log.warning("websocket %s refused: %s", scope.get("path"), message)
    await refuse_websocket(scope, send, status, message)
