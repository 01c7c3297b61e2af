"""The websocket <-> ZMQ relay of one client: its own sockets, replay buffer, rate limit.

Protocol core only: it talks to a :class:`Sink` (``send(frame)``, ``close(code, reason)``), never to
a websocket. :mod:`carme.kernels.clients` keeps these per kernel and session id; the route in
:mod:`carme.api.kernel_ws` adapts a websocket to a sink.

Each client has its own four ZMQ sockets, as in jupyter_server: an iopub SUB (every client sees
all output) and shell/control/stdin DEALERs whose ZMQ identity is the client's session id (so the
kernel's replies, ``input_request`` included, go back to that client only). One task (the pump)
reads the four sockets and writes to the sink; while the sink is slow the pump waits, the
messages wait in ZMQ (receive high-water mark unlimited), nothing is dropped. While no sink is
attached the pump keeps reading into a bounded replay buffer, delivered first when a client with
the same session id comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import zmq

from ..tasks import cancel_and_wait
from .frames import decode_client_frame, encode_legacy, encode_v1
from .policy import MessagePolicy
from .ratelimit import IOPubRateLimiter, RateLimits
from .session import DELIMITER, Session
from .zmqio import SocketGroup

log = logging.getLogger("carme.kernels.relay")

CLIENT_CHANNELS = ("iopub", "shell", "control", "stdin")
BATCH = 64  # messages read from one socket before looking at the others / yielding to the loop
NUDGE_INTERVAL = 0.5


class SinkClosed(Exception):
    """Raised by :meth:`Sink.send` when the client is gone (it disconnected, or its websocket
    was closed): the frame was not sent."""


class Sink(Protocol):
    """Where a client's frames go (the websocket, adapted by the route).

    ``send`` raises :class:`SinkClosed` when the client is gone; any other exception is a fault,
    logged by the relay, which then closes the sink with 1011. ``close`` on a sink that is gone
    does nothing.
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
    kernel_info_timeout: float


class _Channel:
    __slots__ = ("name", "wire", "sock")

    def __init__(self, name: str, sock: zmq.Socket) -> None:  # type: ignore[type-arg]
        self.name = name
        self.wire = name.encode("ascii")
        self.sock = sock


Message = tuple[bytes, list[bytes], dict[str, Any]]  # (channel name, parts, parsed header)


class ClientRelay:
    """One client (session id) of one kernel: sockets, pump, replay buffer, rate limiter."""

    def __init__(self, session_id: str, session: Session, open_socket: Callable[[str, bytes | None], zmq.Socket],  # type: ignore[type-arg]
                 options: RelayOptions, label: str, observe: Callable[[str, list[bytes]], None] | None = None) -> None:
        self.session_id = session_id
        self.session = session
        self.options = options
        self.label = label  # for log lines: "kernel <id> session <sid>"
        self._open_socket = open_socket
        self._observe = observe  # told of every client message forwarded (Kernel.client_message)
        self._sink: Sink | None = None
        self.policy: MessagePolicy | None = None  # set per attachment; None: every message passes
        self.v1 = True
        self._buffer: deque[Message] = deque()
        self._buffer_bytes = 0
        self._trimmed = 0
        self._limiter = IOPubRateLimiter(options.rate_limits)
        self._iopub_seen = asyncio.Event()
        self._group: SocketGroup | None = None
        self._channels: dict[str, _Channel] = {}
        self._pump_task: asyncio.Task[None] | None = None
        self.closed = False
        self.connecting = False  # being nudged: not attached yet, but not away either
        self._open_sockets()

    # -- sockets ---------------------------------------------------------------------------

    def _open_sockets(self) -> None:
        loop = asyncio.get_running_loop()
        self._group = SocketGroup(loop)
        identity = self.session_id.encode("utf-8")
        for name in CLIENT_CHANNELS:
            sock = self._open_socket(name, None if name == "iopub" else identity)
            self._channels[name] = _Channel(name, sock)
            self._group.add(sock)
        self._pump_task = asyncio.create_task(self._pump(self._group, list(self._channels.values())),
                                              name=f"relay {self.label}")

    async def _close_sockets(self) -> None:
        task, self._pump_task = self._pump_task, None
        if self._group is not None:
            self._group.remove_all()
            self._group = None
        if task is not None:
            await cancel_and_wait(task, f"{self.label}: the relay", log)
        for channel in self._channels.values():
            channel.sock.close(linger=0)
        self._channels = {}

    async def reopen(self) -> None:
        """New sockets (the kernel's ports changed after a restart); messages buffered are kept."""
        await self._close_sockets()
        if not self.closed:
            self._iopub_seen.clear()
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
        self.v1 = v1
        self.policy = policy
        self._limiter.reset()
        if self._trimmed:
            log.warning("%s: replaying; %d older messages were dropped while away (replay buffer limit)",
                        self.label, self._trimmed)
            self._trimmed = 0
        if self._buffer and self._group is not None:
            self._group.wake()  # wake the pump to flush

    def detach(self, sink: Sink) -> bool:
        """Stop delivering to ``sink`` (gone); keep buffering. False if another sink replaced it."""
        if self._sink is not sink:
            return False
        self._sink = None
        return True

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    async def close(self, flush: float = 0.0) -> None:
        """Close the sockets; first give an attached client up to ``flush`` seconds to receive
        what is queued (a final ``dead`` status)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + flush
        while self._buffer and self._sink is not None and self._pump_task is not None and loop.time() < deadline:
            await asyncio.sleep(0.01)
        self.closed = True
        self._sink = None
        await self._close_sockets()
        self._buffer.clear()
        self._buffer_bytes = 0

    # -- nudge -----------------------------------------------------------------------------

    async def nudge(self, busy: bool) -> bool:
        """Wait until this client's iopub subscription is live (ZMQ's slow joiner).

        As jupyter_server: send ``kernel_info_request`` on fresh shell and control sockets every
        half second until one answers and an iopub message has reached this client's SUB. A busy
        kernel is not nudged (its shell is queued behind the running cell). False on timeout.
        """
        if busy:
            return True
        loop = asyncio.get_running_loop()
        socks = (self._open_socket("shell", None), self._open_socket("control", None))
        group = SocketGroup(loop)
        for sock in socks:
            group.add(sock)
        replied = False
        deadline = loop.time() + self.options.kernel_info_timeout
        try:
            while not self.closed and loop.time() < deadline:
                # a new request each round: its iopub status may reach a SUB that was not live before
                for name, sock in zip(("shell", "control"), socks, strict=True):
                    await group.send(sock, self.session.serialize(self.session.msg(name, "kernel_info_request")))
                round_end = min(loop.time() + NUDGE_INTERVAL, deadline)
                while not (replied and self._iopub_seen.is_set()) and loop.time() < round_end:
                    waiter = self._iopub_seen.wait() if replied else group.wait()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(waiter, round_end - loop.time())
                    for sock in socks:
                        while group.recv(sock) is not None:
                            replied = True
                if replied and self._iopub_seen.is_set():
                    return True
            if not self.closed:
                log.warning("%s: no kernel_info_reply and iopub within %.0f s; connecting anyway",
                            self.label, self.options.kernel_info_timeout)
            return False
        finally:
            group.remove_all()
            for sock in socks:
                sock.close(linger=0)

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
                    self._refuse(name, header, self.policy)
                return
        channel = self._channels.get(name)
        if name == "iopub" or channel is None or self._group is None:
            log.warning("%s: dropped a client message for channel %s", self.label, name)
            return
        await self._group.send(channel.sock, [DELIMITER, self.session.sign(parts), *parts])
        if self._observe is not None:
            self._observe(name, parts)

    # -- kernel -> client ------------------------------------------------------------------

    async def _pump(self, group: SocketGroup, channels: list[_Channel]) -> None:
        verify = self.session.verify
        iopub_seen = self._iopub_seen
        ready = group.ready
        while True:
            if self._buffer and self._sink is not None:
                await self._flush()
            for channel in channels:
                sock = channel.sock
                if sock not in ready:
                    continue
                for _ in range(BATCH):
                    frames = group.recv(sock)
                    if frames is None:
                        break
                    try:
                        split = frames.index(DELIMITER)
                    except ValueError:
                        log.warning("%s: dropped a %s message without delimiter", self.label, channel.name)
                        continue
                    parts = frames[split + 2:]
                    if len(parts) < 4 or not verify(frames[split + 1], parts):
                        log.warning("%s: dropped a %s message with a bad signature or too few parts",
                                    self.label, channel.name)
                        continue
                    try:
                        header = orjson.loads(parts[0])
                    except orjson.JSONDecodeError:
                        header = None
                    if not isinstance(header, dict):
                        log.warning("%s: dropped a %s message whose header is not a JSON object",
                                    self.label, channel.name)
                        continue
                    if channel.wire == b"iopub":
                        iopub_seen.set()
                    await self.deliver((channel.wire, parts, header))
            if ready:
                await asyncio.sleep(0)  # more to read: let other clients, kernels and HTTP requests run first
            else:
                await group.wait()

    def post(self, message: Message) -> None:
        """Queue a message made by the server (synthetic status) behind what the kernel sent."""
        self._append(message)
        if self._group is not None:
            self._group.wake()

    async def deliver(self, message: Message) -> None:
        """Send one message to the client, or buffer it while no client is attached."""
        if self._sink is None or self._buffer:
            self._append(message)
            await self._flush()
        else:
            await self._try_send(message)

    async def _flush(self) -> None:
        while self._buffer and self._sink is not None:
            message = self._buffer.popleft()
            self._buffer_bytes -= _size(message[1])
            if not await self._try_send(message):
                return

    async def _try_send(self, message: Message) -> bool:
        sink = self._sink
        assert sink is not None
        try:
            await self._send(sink, message)
            return True
        except SinkClosed as exc:  # the client went away: the message was not written, keep it for its return
            log.debug("%s: client gone: %s", self.label, exc)
            if self._sink is sink:
                self._sink = None
            self._buffer.appendleft(message)
            self._buffer_bytes += _size(message[1])
            return False
        except Exception:
            # A fault, not the client: say so, and close rather than leave the websocket open and
            # silent. The message is dropped: replayed, it would fail again.
            log.exception("%s: sending a %s %s message failed; closing the websocket (1011)", self.label,
                          message[0].decode(), message[2].get("msg_type"))
            if self._sink is sink:
                self._sink = None
            await close_sink(sink, 1011, "internal error")
            return False

    def _append(self, message: Message) -> None:
        self._buffer.append(message)
        self._buffer_bytes += _size(message[1])
        options = self.options
        trimmed = 0
        while len(self._buffer) > 1 and (len(self._buffer) > options.buffer_max_messages
                                         or self._buffer_bytes > options.buffer_max_bytes):
            old = self._buffer.popleft()
            self._buffer_bytes -= _size(old[1])
            trimmed += 1
        if trimmed:
            if not self._trimmed:
                log.warning("%s: client away; replay buffer full (%d messages, %d bytes max): dropping the "
                            "oldest buffered messages", self.label, options.buffer_max_messages,
                            options.buffer_max_bytes)
            self._trimmed += trimmed

    async def _send(self, sink: Sink, message: Message) -> None:
        wire, parts, header = message
        if self.policy is not None and not self.policy.allows_to_client(header, parts[1]):
            return
        if wire == b"iopub" and self._limiter.limits.enabled:
            msg_type = header.get("msg_type", "")
            idle = msg_type == "status" and b'"idle"' in parts[3] and _state(parts[3]) == "idle"
            allowed, notice = self._limiter.check(msg_type, _size(parts), idle)
            if notice is not None:
                await self._send_raw(sink, self._notice(notice, parts[1]))
            if not allowed:
                return
        await self._send_raw(sink, message)

    async def _send_raw(self, sink: Sink, message: Message) -> None:
        wire, parts, header = message
        if self.v1:
            await sink.send(encode_v1(wire, parts))
        else:
            await sink.send(encode_legacy(wire, parts, str(header.get("msg_id", "")),
                                          str(header.get("msg_type", ""))))

    def _refuse(self, channel: str, request: dict[str, Any], policy: MessagePolicy) -> None:
        """Answer a refused request to this client alone, with what the policy says."""
        for on, kind, answer in policy.answers_to_refused(channel, request):
            msg = self.session.msg(on, kind, answer, parent=request, synthetic=True)
            self.post((on.encode("ascii"), msg.frames, msg.header))

    def _notice(self, text: str, parent: bytes) -> Message:
        try:
            parent_header = orjson.loads(parent) if parent else {}
        except orjson.JSONDecodeError:
            parent_header = {}
        msg = self.session.msg("iopub", "stream", {"name": "stderr", "text": text + "\n"}, parent=parent_header,
                               synthetic=True)
        return b"iopub", msg.frames, msg.header


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


def _size(parts: list[bytes]) -> int:
    return sum(len(p) for p in parts)


def _state(content: bytes) -> str | None:
    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    return value.get("execution_state") if isinstance(value, dict) else None

