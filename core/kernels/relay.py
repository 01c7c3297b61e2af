"""The websocket <-> ZMQ relay of one client: its own request sockets, its queue, its rate limit.

Protocol core only: it talks to a :class:`Sink` (``send(frame)``, ``close(code, reason)``), never to
a websocket. :mod:`carme.kernels.clients` keeps these per kernel and session id; the route in
:mod:`carme.api.kernel_ws` adapts a websocket to a sink.

iopub is read once per kernel, not once per client: the kernel's own iopub reader receives and
verifies each message, and :class:`~carme.kernels.clients.KernelClients` posts it to every client
(:meth:`ClientRelay.post`). Each client keeps its own shell/control/stdin DEALERs whose ZMQ
identity is its session id, as in jupyter_server, so the kernel's replies (``input_request``
included) go back to that client only. A kernel with a transport (:mod:`carme.kernels.transport`)
has no sockets for them: requests go to the transport with the session id as identity, and the
kernel posts the replies to this client (:meth:`ClientRelay.post`).

Each client has one queue and one task (the pump) that reads its request sockets into the queue
and writes the queue to the sink; a message for a client with nothing queued is written at once
where it arrives when the sink can take it without waiting (``send_nowait``: no task switch per
message); the frames of a batch of kernel messages are held by the sink and written together at
the batch's end (:meth:`ClientRelay.flush`). While the sink is slow the pump waits and the queue
grows, for that client alone (nothing is dropped, other clients are not held up: the backpressure
the ZMQ receive queues gave when every client had its own iopub socket). While no sink is attached
the queue is the replay buffer, bounded, delivered first when a client with the same session id
comes back.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import zmq

from ..tasks import cancel_and_wait
from .frames import decode_client_frame, encode_legacy, encode_v1
from .message import REQUEST_CHANNELS
from .policy import MessagePolicy, content_field
from .ratelimit import IOPubRateLimiter, RateLimits
from .session import DELIMITER, Session
from .transport import KernelTransport
from .zmqio import SocketGroup, monitor_socket

log = logging.getLogger("carme.kernels.relay")

HANDSHAKE = int(zmq.EVENT_HANDSHAKE_SUCCEEDED)
BATCH = 64  # messages read from one socket before looking at the others
SEND_BATCH = 256  # messages written to a sink before letting other clients and requests run


class SinkClosed(Exception):
    """Raised by :meth:`Sink.send` when the client is gone (it disconnected, or its websocket
    was closed): the frame was not sent."""


class Sink(Protocol):
    """Where a client's frames go (the websocket, adapted by the route).

    ``send`` raises :class:`SinkClosed` when the client is gone; any other exception is a fault,
    logged by the relay, which then closes the sink with 1011. ``close`` on a sink that is gone
    does nothing. A sink may also have ``send_nowait(frame, hold) -> bool``, which writes at once
    when no wait is needed and returns False (nothing written) otherwise: the relay then delivers
    a message to an idle client right where it arrives, without waking the client's pump. With
    ``hold`` true the sink may keep the frame until its ``flush()`` (or its next write), which the
    relay calls before it returns to the event loop.
    """

    async def send(self, frame: bytes | str) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


@dataclass(frozen=True)
class RelayOptions:
    """Per-connection limits, from the kernel settings (their defaults are declared with the
    settings, in carme.builtins.kernels)."""

    rate_limits: RateLimits
    buffer_max_messages: int
    buffer_max_bytes: int
    connect_timeout: float  # how long a new client waits for its stdin socket (kernel_info_timeout)


class Outgoing:
    """One message on its way to clients: channel, raw parts, parsed header, and its websocket
    frames, encoded on first use and shared by every client of the kernel (an iopub message
    goes to all of them)."""

    __slots__ = ("wire", "parts", "header", "size", "_v1", "_legacy")

    def __init__(self, wire: bytes, parts: list[bytes], header: dict[str, Any]) -> None:
        self.wire = wire
        self.parts = parts
        self.header = header
        self.size = sum(map(len, parts))
        self._v1: bytes | None = None
        self._legacy: bytes | str | None = None

    def frame(self, v1: bool) -> bytes | str:
        if v1:
            if self._v1 is None:
                self._v1 = encode_v1(self.wire, self.parts)
            return self._v1
        if self._legacy is None:
            header = self.header
            self._legacy = encode_legacy(self.wire, self.parts, str(header.get("msg_id", "")),
                                         str(header.get("msg_type", "")))
        return self._legacy


# (channel, ZMQ identity) -> a new socket for that channel and the URL to connect it to
SocketOpener = Callable[[str, bytes | None], tuple[zmq.Socket, str]]  # type: ignore[type-arg]


class ClientRelay:
    """One client (session id) of one kernel: request sockets, queue, pump, rate limiter."""

    def __init__(self, session_id: str, session: Session, open_socket: SocketOpener,
                 options: RelayOptions, label: str, observe: Callable[[str, list[bytes]], None] | None = None,
                 transport: Callable[[], KernelTransport | None] | None = None) -> None:
        self.session_id = session_id
        self.session = session
        self.options = options
        self.label = label  # for log lines: "kernel <id> session <sid>"
        self._open_socket = open_socket
        self._transport_of = transport  # the kernel's transport, read whenever the sockets are (re)made
        self._transport: KernelTransport | None = None
        self._identity = session_id.encode("utf-8")  # who asked, to the transport
        self._observe = observe  # told of every client message forwarded (Kernel.client_message)
        self._sink: Sink | None = None
        self._nowait: Callable[[bytes | str, bool], bool] | None = None  # the sink's send_nowait, if it has one
        self.policy: MessagePolicy | None = None  # set per attachment; None: every message passes
        self.v1 = True
        self._queue: deque[Outgoing] = deque()
        self._queue_bytes = 0
        self._trimmed = 0
        self._limiter = IOPubRateLimiter(options.rate_limits)
        self._limited = options.rate_limits.enabled  # iopub goes through the pump (the limiter's notices)
        self._group: SocketGroup | None = None
        self._sockets: dict[str, zmq.Socket] = {}  # type: ignore[type-arg]
        self._pump_task: asyncio.Task[None] | None = None
        self._sending = False  # the pump is in a send: a new message must queue behind it
        self._holding = False  # the sink holds frames written with hold: flush() writes them
        self._stdin_monitor: zmq.Socket | None = None  # type: ignore[type-arg]
        self.closed = False
        self._open_sockets()

    # -- sockets ---------------------------------------------------------------------------

    def _open_sockets(self) -> None:
        self._group = SocketGroup(asyncio.get_running_loop())
        identity = self._identity
        self._transport = self._transport_of() if self._transport_of is not None else None
        for name in REQUEST_CHANNELS if self._transport is None else ():
            sock, url = self._open_socket(name, identity)
            if name == "stdin" and not url.startswith("inproc:"):
                # The kernel sends first on stdin (input_request), to this identity: a ROUTER drops
                # a message for a peer whose handshake is not done yet. See :meth:`wait_connected`.
                # (inproc has no handshake: the peer is known once connect returns.)
                self._stdin_monitor = monitor_socket(sock, HANDSHAKE)
            sock.connect(url)
            self._sockets[name] = sock
            self._group.add(sock)
        self._pump_task = asyncio.create_task(self._pump(self._group), name=f"relay {self.label}")

    async def wait_connected(self, timeout: float) -> bool:
        """Wait until the kernel knows this client's stdin socket, so an ``input_request`` sent to
        it is not dropped (what jupyter_server's kernel_info nudge also waited for). False when
        ``timeout`` passed first; the client is served anyway."""
        monitor = self._stdin_monitor
        if monitor is None:
            return True
        group = SocketGroup(asyncio.get_running_loop())
        group.add(monitor)
        try:
            async with asyncio.timeout(timeout):
                while group.recv(monitor) is None:
                    await group.wait()
            return True
        except TimeoutError:
            log.warning("%s: the kernel's stdin did not take this client's connection within %.0f s",
                        self.label, timeout)
            return False
        finally:
            group.remove_all()
            self._close_monitor()

    def _close_monitor(self) -> None:
        monitor, self._stdin_monitor = self._stdin_monitor, None
        if monitor is not None:
            stdin = self._sockets.get("stdin")
            if stdin is not None and not stdin.closed:
                stdin.disable_monitor()
            monitor.close(linger=0)

    async def _close_sockets(self) -> None:
        self._close_monitor()
        self._transport = None
        task, self._pump_task = self._pump_task, None
        if self._group is not None:
            self._group.remove_all()
            self._group = None
        if task is not None:
            await cancel_and_wait(task, f"{self.label}: the relay", log)
        for sock in self._sockets.values():
            sock.close(linger=0)
        self._sockets = {}

    async def reopen(self) -> None:
        """New sockets (the kernel's ports changed after a restart); queued messages are kept."""
        await self._close_sockets()
        if not self.closed:
            self._open_sockets()

    # -- attach / detach -------------------------------------------------------------------

    @property
    def sink(self) -> Sink | None:
        return self._sink

    @property
    def attached(self) -> bool:
        return self._sink is not None

    def attach(self, sink: Sink, v1: bool, policy: MessagePolicy | None = None) -> None:
        """Deliver to ``sink`` from now on, starting with what was buffered (filtered by ``policy``)."""
        self._sink = sink
        self._nowait = getattr(sink, "send_nowait", None)
        self.v1 = v1
        self.policy = policy
        self._limiter.reset()
        if self._trimmed:
            log.warning("%s: replaying; %d older messages were dropped while away (replay buffer limit)",
                        self.label, self._trimmed)
            self._trimmed = 0
        if self._queue and self._group is not None:
            self._group.wake()  # wake the pump to flush

    def detach(self, sink: Sink) -> bool:
        """Stop delivering to ``sink`` (gone); keep buffering. False if another sink replaced it."""
        if self._sink is not sink:
            return False
        self._sink = None
        self._trim()
        return True

    @property
    def buffered(self) -> int:
        return len(self._queue)

    async def close(self, flush: float = 0.0) -> None:
        """Close the sockets; first give an attached client up to ``flush`` seconds to receive
        what is queued (a final ``dead`` status)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + flush
        while self._queue and self._sink is not None and self._pump_task is not None and loop.time() < deadline:
            await asyncio.sleep(0.01)
        self.closed = True
        self._sink = None
        await self._close_sockets()
        self._queue.clear()
        self._queue_bytes = 0

    # -- client -> kernel ------------------------------------------------------------------

    async def from_client(self, frame: bytes | str) -> None:
        """Sign and send one client frame to the kernel (dropped, logged, when malformed)."""
        decoded = decode_client_frame(frame, self.v1)
        if decoded is None:
            return
        name, parts = decoded
        if self.policy is not None:
            header = _header(parts[0])
            if not self.policy.allows_from_client(header):
                if self.policy.refusal is not None:
                    self._answer(header, self.policy.answers_to_refused(name, header))
                return
            local = self.policy.answers_locally(name, header)
            if local:
                self._answer(header, local)
                return
        transport = self._transport
        if transport is not None:
            await transport.send(name, self._identity, parts)
        else:
            sock = self._sockets.get(name)
            if sock is None or self._group is None:
                log.warning("%s: dropped a client message for channel %s", self.label, name)
                return
            await self._group.send(sock, [DELIMITER, self.session.sign(parts), *parts])
        if self._observe is not None:
            self._observe(name, parts)

    # -- kernel -> client ------------------------------------------------------------------

    def post(self, message: Outgoing, hold: bool = False) -> None:
        """Queue ``message`` for this client (an iopub message read once for the kernel, or one
        made by the server); the pump delivers it, or keeps it for replay while away. ``hold``:
        the caller calls :meth:`flush` before it returns to the event loop, so a frame written at
        once may wait in the sink until then."""
        if self.closed:
            return
        sink = self._sink
        if sink is not None and not self._queue and not self._sending and self._sent_now(sink, message, hold):
            return
        self._queue.append(message)
        self._queue_bytes += message.size
        if self._sink is None:
            self._trim()
        elif self._group is not None:
            self._group.wake()

    def flush(self) -> None:
        """Write what the sink holds (frames posted with ``hold``)."""
        if self._holding:
            self._holding = False
            sink = self._sink
            flush = getattr(sink, "flush", None)
            if flush is not None:
                flush()

    def _sent_now(self, sink: Sink, message: Outgoing, hold: bool = False) -> bool:
        """Deliver ``message`` to ``sink`` at once if it takes it without waiting (nothing is
        queued before it); False: queue it for the pump. The rate limiter's notices go through
        the pump, and so does anything that fails here (the pump's send reports it)."""
        send_nowait = self._nowait
        if send_nowait is None or (self._limited and message.wire == b"iopub"):
            return False
        try:
            policy = self.policy
            if policy is not None and not policy.allows_to_client(message.header, message.parts[1], message.parts[3]):
                return True  # not for this client
            if not send_nowait(message.frame(self.v1), hold):
                return False
        except Exception:
            return False
        if hold:
            self._holding = True
        return True

    async def _pump(self, group: SocketGroup) -> None:
        channels = [(name.encode("ascii"), sock) for name, sock in self._sockets.items()]
        ready = group.ready
        while True:
            for wire, sock in channels:
                if sock in ready:
                    self._read(group, wire, sock)
            if self._queue and self._sink is not None:
                await self._flush()
            if ready or (self._queue and self._sink is not None):
                await asyncio.sleep(0)  # more to do: let other clients, kernels and HTTP requests run first
            else:
                await group.wait()

    def _read(self, group: SocketGroup, wire: bytes, sock: zmq.Socket) -> None:  # type: ignore[type-arg]
        """Queue up to BATCH verified replies from one of this client's request sockets."""
        ready = group.ready
        for _ in range(BATCH):
            if sock not in ready:
                return
            frames = group.recv(sock)
            if frames is None:
                return
            try:
                split = frames.index(DELIMITER)
            except ValueError:
                log.warning("%s: dropped a %s message without delimiter", self.label, wire.decode())
                continue
            parts = frames[split + 2:]
            if len(parts) < 4 or not self.session.verify(frames[split + 1], parts):
                log.warning("%s: dropped a %s message with a bad signature or too few parts", self.label, wire.decode())
                continue
            header = _header(parts[0])
            if not header:
                log.warning("%s: dropped a %s message whose header is not a JSON object", self.label, wire.decode())
                continue
            self.post(Outgoing(wire, parts, header))

    async def _flush(self) -> None:
        queue = self._queue
        for _ in range(SEND_BATCH):
            sink = self._sink
            if not queue or sink is None:
                return
            message = queue.popleft()
            self._queue_bytes -= message.size
            self._sending = True
            try:
                sent = await self._try_send(sink, message)
            finally:
                self._sending = False
            if not sent:
                return

    async def _try_send(self, sink: Sink, message: Outgoing) -> bool:
        try:
            await self._send(sink, message)
            return True
        except SinkClosed as exc:  # the client went away: the message was not written, keep it for its return
            log.debug("%s: client gone: %s", self.label, exc)
            self._queue.appendleft(message)
            self._queue_bytes += message.size
            if self._sink is sink:
                self._sink = None
                self._trim()
            return False
        except Exception:
            # A fault, not the client: say so, and close rather than leave the websocket open and
            # silent. The message is dropped: replayed, it would fail again.
            log.exception("%s: sending a %s %s message failed; closing the websocket (1011)", self.label,
                          message.wire.decode(), message.header.get("msg_type"))
            if self._sink is sink:
                self._sink = None
                self._trim()
            await close_sink(sink, 1011, "internal error")
            return False

    def _trim(self) -> None:
        """Keep the replay buffer (the queue while away) within its limits, newest kept."""
        options = self.options
        queue = self._queue
        trimmed = 0
        while len(queue) > 1 and (len(queue) > options.buffer_max_messages
                                  or self._queue_bytes > options.buffer_max_bytes):
            self._queue_bytes -= queue.popleft().size
            trimmed += 1
        if trimmed:
            if not self._trimmed:
                log.warning("%s: client away; replay buffer full (%d messages, %d bytes max): dropping the "
                            "oldest buffered messages", self.label, options.buffer_max_messages,
                            options.buffer_max_bytes)
            self._trimmed += trimmed

    async def _send(self, sink: Sink, message: Outgoing) -> None:
        policy = self.policy
        if policy is not None and not policy.allows_to_client(message.header, message.parts[1], message.parts[3]):
            return
        if message.wire == b"iopub" and self._limiter.limits.enabled:
            parts = message.parts
            msg_type = message.header.get("msg_type", "")
            idle = msg_type == "status" and b'"idle"' in parts[3] and content_field(parts[3], "execution_state") == "idle"
            allowed, notice = self._limiter.check(msg_type, message.size, idle)
            if notice is not None:
                await sink.send(self._notice(notice, parts[1]).frame(self.v1))
            if not allowed:
                return
        await sink.send(message.frame(self.v1))

    def _answer(self, request: dict[str, Any], answers: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Answer a request to this client alone, with what the policy says (refused, or answered
        by the server)."""
        for on, kind, answer in answers:
            msg = self.session.msg(on, kind, answer, parent=request, synthetic=True)
            self.post(Outgoing(on.encode("ascii"), msg.frames, msg.header))

    def _notice(self, text: str, parent: bytes) -> Outgoing:
        parent_header = _header(parent) if parent else {}
        msg = self.session.msg("iopub", "stream", {"name": "stderr", "text": text + "\n"}, parent=parent_header,
                               synthetic=True)
        return Outgoing(b"iopub", msg.frames, msg.header)


def _header(frame: bytes) -> dict[str, Any]:
    try:
        header = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return {}
    return header if isinstance(header, dict) else {}


async def close_sink(sink: Sink, code: int, reason: str) -> None:
    """Close ``sink``, logging (not raising) a failure: the client is let go either way."""
    try:
        await sink.close(code, reason)
    except Exception:
        log.exception("closing a client websocket with %d (%s) failed", code, reason)
