"""The server's own connection to one kernel: requests on shell/control, iopub, heartbeat.

Clients (websockets) get their own sockets from :meth:`carme.kernels.kernel.Kernel.connect`;
this one is the server's: it asks ``kernel_info`` / ``shutdown`` / ``interrupt``, reads iopub
once for activity tracking and subscribers, and pings the heartbeat. A kernel whose provisioner
carries its messages itself has :class:`~carme.kernels.transport.TransportChannels` instead; both
are :class:`Channels`.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable

import zmq
import zmq.asyncio

from ..tasks import cancel_and_wait
from .connection import ConnectionInfo, open_socket
from .message import KernelMessage
from .session import DigestHistory, Session
from .zmqio import SocketGroup

log = logging.getLogger("carme.kernels.channels")


class Channels(ABC):
    """The server's requests to one kernel and the matching of their replies; how messages travel
    is the subclass's: :class:`ServerChannels` (ZMQ sockets) or
    :class:`~carme.kernels.transport.TransportChannels` (a provisioner's transport)."""

    def __init__(self, info: ConnectionInfo, on_iopub: Callable[[KernelMessage], None],
                 on_flush: Callable[[], None] = lambda: None) -> None:
        self.info = info
        self._on_iopub = on_iopub  # each iopub message
        self._on_flush = on_flush  # after one or more of them, before returning to the event loop
        self._pending: dict[str, asyncio.Future[KernelMessage]] = {}

    @abstractmethod
    def send(self, msg: KernelMessage) -> None:
        """Send a request without waiting for its reply (fire and forget)."""

    @abstractmethod
    async def _send(self, msg: KernelMessage) -> None:
        """Send a request; returns once it is on its way."""

    def expect_reply(self, msg_id: str, future: asyncio.Future[KernelMessage]) -> Callable[[], None]:
        """Resolve ``future`` with the reply to ``msg_id`` (several ids may share one future)."""
        self._pending[msg_id] = future
        return lambda: self._pending.pop(msg_id, None) and None

    async def request(self, msg: KernelMessage, timeout: float) -> KernelMessage:
        """Send ``msg`` on its channel and wait for the reply (TimeoutError after ``timeout``)."""
        future: asyncio.Future[KernelMessage] = asyncio.get_running_loop().create_future()
        self._pending[msg.msg_id] = future
        try:
            await self._send(msg)
            return await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(msg.msg_id, None)

    def _reply(self, msg: KernelMessage) -> None:
        """A reply (shell or control) to one of the server's requests arrived."""
        future = self._pending.get(msg.parent_msg_id or "")
        if future is not None and not future.done():
            future.set_result(msg)

    @abstractmethod
    async def ping(self, timeout: float) -> bool:
        """True while the kernel is reachable (a heartbeat round trip for a ZMQ kernel)."""

    async def close(self) -> None:
        """Stop reading and release what this object opened; pending requests are cancelled."""
        for future in self._pending.values():
            if not future.done():
                future.cancel()


class ServerChannels(Channels):
    """Shell + control DEALERs with reply matching, an iopub SUB, and a heartbeat REQ."""

    def __init__(self, context: zmq.asyncio.Context, info: ConnectionInfo, session: Session,
                 on_iopub: Callable[[KernelMessage], None], on_flush: Callable[[], None] = lambda: None) -> None:
        super().__init__(info, on_iopub, on_flush)
        self.context = context
        self.session = session
        self._sockets = {name: open_socket(context, info, name) for name in ("shell", "control", "iopub")}
        self._hb: zmq.asyncio.Socket | None = open_socket(context, info, "hb")
        self._history = DigestHistory()
        self._tasks = [asyncio.ensure_future(self._read_replies("shell")),
                       asyncio.ensure_future(self._read_replies("control")),
                       asyncio.ensure_future(self._read_iopub())]

    def send(self, msg: KernelMessage) -> None:
        self._sockets[msg.channel].send_multipart(self.session.serialize(msg))

    async def _send(self, msg: KernelMessage) -> None:
        await self._sockets[msg.channel].send_multipart(self.session.serialize(msg))

    async def _read_replies(self, channel: str) -> None:
        sock = self._sockets[channel]
        while True:
            parts = await sock.recv_multipart()
            msg = self.session.deserialize(channel, parts)
            if msg is not None:
                self._reply(msg)

    async def _read_iopub(self) -> None:
        # Every iopub message of the kernel passes here once (relayed to all its clients from
        # here), so it is read without zmq.asyncio: through a plain socket on the same handle,
        # watched by its file descriptor (zmq.asyncio's poll registers and unregisters a reader
        # and makes a future on every wake-up, more than the message itself costs when the kernel
        # prints line by line).
        drain = zmq.Socket.shadow(self._sockets["iopub"].underlying)
        # Paced: a kernel printing line by line is read a few messages per wake-up (see zmqio).
        group = SocketGroup(asyncio.get_running_loop(), paced=True)
        group.add(drain)
        try:
            while True:
                await group.wait()
                if self._drain_iopub(group, drain):
                    try:
                        self._on_flush()
                    except Exception:
                        log.exception("the iopub flush failed")
                if group.ready:
                    await asyncio.sleep(0)  # more queued: let clients, other kernels and requests run first
        finally:
            group.remove_all()

    def _drain_iopub(self, group: SocketGroup, drain: zmq.Socket) -> int:  # type: ignore[type-arg]
        """Hand up to 256 queued iopub messages to ``on_iopub``; returns how many."""
        ready = group.ready
        delivered = 0
        for _ in range(256):
            if drain not in ready:
                break
            parts = group.recv(drain)
            if parts is None:
                break
            msg = self.session.deserialize("iopub", parts, self._history)
            if msg is not None:
                if msg.header.get("msg_type") == "status" and b'"idle"' in msg.frames[3]:
                    group.calm()  # a request is done: what follows may be a round trip, not held
                delivered += 1
                try:
                    self._on_iopub(msg)
                except Exception:
                    log.exception("iopub handler failed on %r", msg)
        return delivered

    async def ping(self, timeout: float) -> bool:
        """One heartbeat round trip; False when the kernel does not echo within ``timeout``."""
        if self._hb is None:
            self._hb = open_socket(self.context, self.info, "hb")
        try:
            await self._hb.send(b"ping")
            if await self._hb.poll(int(timeout * 1000)):
                await self._hb.recv()
                return True
        except zmq.ZMQError:
            pass
        # A REQ socket without its reply is stuck in the wrong state: start a fresh one.
        self._hb.close(linger=0)
        self._hb = None
        return False

    async def close(self) -> None:
        """Stop the readers and close every socket this object opened."""
        for task in self._tasks:
            await cancel_and_wait(task, "a kernel channel reader", log)
        await super().close()
        for sock in self._sockets.values():
            sock.close(linger=0)
        if self._hb is not None:
            self._hb.close(linger=0)
            self._hb = None
