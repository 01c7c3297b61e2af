"""The websocket clients of every kernel: who is connected, who is away, and replay on return.

One :class:`KernelClients` per kernel, made on first connect by :class:`ClientRegistry` (one per
app). Keyed by the client's ``session_id``, as jupyter_server keys ``kernel_id:session_id``:

- a new session id gets fresh request sockets and is attached at once: iopub comes from the
  kernel's own reader, live since the kernel answered kernel_info, so nothing is lost at connect
  and no client needs jupyter_server's kernel_info "nudge"; clients that went away with another
  session id are discarded (a page reload makes a new id);
- the same session id while its old socket is still open replaces the stale socket (closed with
  1000), keeping the sockets and anything not yet delivered;
- the same session id after a disconnect gets what it missed, then live messages.

Each iopub message is received and verified once, by the kernel's reader, and handed to
:meth:`KernelClients.fan_out` (subscribed to the kernel), which queues it for every client; its
websocket frame is encoded once per protocol, whatever the number of clients. The frames of the
messages the kernel hands over in one go are held by each client's sink and written together when
the kernel says the batch is over (``Kernel.on_flush``): one system call per client and batch, not
per message; a lone message is a batch of one and goes out at once. Kernel restarts and
deaths arrive the same way, as the kernel's synthetic iopub ``status`` (``restarting``, ``dead``),
as jupyter_server does for automatic restarts.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Coroutine
from typing import Any


from .message import KernelMessage
from .policy import MessagePolicy
from .relay import ClientRelay, Outgoing, RelayOptions, Sink, SocketOpener, close_sink
from .session import Session
from .transport import KernelTransport

log = logging.getLogger("carme.kernels.clients")

Subscribe = Callable[[Callable[[KernelMessage], None]], Callable[[], None]]  # Kernel.subscribe


class KernelClients:
    """The clients of one kernel, by session id."""

    def __init__(self, kernel_id: str, session: Session, open_socket: SocketOpener, options: RelayOptions,
                 subscribe: Subscribe, buffer_offline: bool = True,
                 observe: Callable[[str, list[bytes]], None] | None = None,
                 subscribe_direct: Callable[[Callable[[str, KernelMessage], None]], Callable[[], None]] | None = None,
                 transport: Callable[[], KernelTransport | None] | None = None,
                 on_flush: Callable[[Callable[[], None]], Callable[[], None]] | None = None) -> None:
        self.kernel_id = kernel_id
        self.observe = observe
        self.transport = transport  # Kernel.transport's getter: requests go there when it has one
        self.session = session
        self.open_socket = open_socket
        self.options = options
        self.buffer_offline = buffer_offline
        self.clients: dict[str, ClientRelay] = {}
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Future[None]] = set()
        self._removers = [subscribe(self.fan_out)]
        # With Kernel.on_flush, fan_out's frames may wait in the sinks until the batch is over.
        self._hold = on_flush is not None
        if on_flush is not None:
            self._removers.append(on_flush(self.flush))
        if subscribe_direct is not None:  # Kernel.on_send_to_client
            self._removers.append(subscribe_direct(self.send_to))

    def send_to(self, session_id: str, msg: KernelMessage) -> None:
        """A message made by the server for the client ``session_id`` alone (none: dropped)."""
        client = self.clients.get(session_id)
        if client is not None:
            client.post(Outgoing(msg.channel.encode("ascii"), msg.frames, msg.header))

    def fan_out(self, msg: KernelMessage) -> None:
        """One iopub message of the kernel (verified by its reader) to every client: queued for
        those connected, kept for replay for those away."""
        if self.clients:
            message = Outgoing(b"iopub", msg.frames, msg.header)
            hold = self._hold
            for client in self.clients.values():
                client.post(message, hold)

    def flush(self) -> None:
        """The kernel's batch of messages is over: every client writes what its sink holds."""
        for client in self.clients.values():
            client.flush()

    @property
    def connected(self) -> int:
        """Open websockets (the kernel model's ``connections``)."""
        return sum(1 for c in self.clients.values() if c.attached)

    async def connect(self, session_id: str | None, sink: Sink, v1: bool,
                      policy: MessagePolicy | None = None) -> ClientRelay:
        """Attach ``sink`` as the client ``session_id``; it receives every message from now on.

        ``policy`` restricts what this connection may send and receive (None: everything)."""
        if not session_id:
            log.warning("kernel %s: websocket without session_id; its output cannot be replayed", self.kernel_id)
            session_id = uuid.uuid4().hex
        async with self._lock:  # one connect at a time per kernel: the session id table is shared
            client = self.clients.get(session_id)
            if client is not None and not client.closed:
                if not client.attached and client.buffered:
                    log.info("kernel %s: session %s is back; replaying %d buffered messages",
                             self.kernel_id, session_id, client.buffered)
                self._attach(client, sink, v1, policy)
                return client
            await self._discard_away(keep=session_id)
            client = ClientRelay(session_id, self.session, self.open_socket, self.options,
                                 f"kernel {self.kernel_id} session {session_id}", self.observe, self.transport)
            self.clients[session_id] = client
            client.attach(sink, v1, policy)
        await client.wait_connected(self.options.connect_timeout)
        return client

    def _attach(self, client: ClientRelay, sink: Sink, v1: bool, policy: MessagePolicy | None) -> None:
        stale = client.sink
        if stale is not None:
            log.warning("kernel %s: replacing stale connection of session %s", self.kernel_id, client.session_id)
            client.detach(stale)
            self._background(close_sink(stale, 1000, "replaced by a new connection"))
        client.attach(sink, v1, policy)

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def disconnect(self, client: ClientRelay, sink: Sink) -> None:
        """``sink`` is gone: keep buffering for its session id (or forget it when buffering is off)."""
        if not client.detach(sink):
            return  # already replaced by a newer connection of the same session
        if not self.buffer_offline and self.clients.get(client.session_id) is client:
            del self.clients[client.session_id]
            await client.close()

    async def _discard_away(self, keep: str) -> None:
        for session_id, client in list(self.clients.items()):
            if session_id != keep and not client.attached:
                if client.buffered:
                    log.info("kernel %s: discarding %d messages buffered for session %s (a new session connected)",
                             self.kernel_id, client.buffered, session_id)
                del self.clients[session_id]
                await client.close()

    async def reopen(self) -> None:
        """The kernel came back on new ports: every client gets fresh sockets."""
        for client in list(self.clients.values()):
            await client.reopen()

    async def close(self, code: int = 1000, reason: str = "kernel shut down", flush: float = 1.0) -> None:
        """Close every client's websocket and sockets (the kernel is gone), after up to ``flush``
        seconds for the messages still queued for connected clients."""
        for remove in self._removers:
            remove()
        clients, self.clients = list(self.clients.values()), {}
        for client in clients:
            sink = client.sink
            await client.close(flush)
            if sink is not None:
                await close_sink(sink, code, reason)


class ClientRegistry:
    """Every kernel's :class:`KernelClients`, for one app."""

    def __init__(self) -> None:
        self.kernels: dict[str, KernelClients] = {}

    def get(self, kernel_id: str) -> KernelClients | None:
        return self.kernels.get(kernel_id)

    def ensure(self, kernel_id: str, make: Callable[[], KernelClients]) -> KernelClients:
        clients = self.kernels.get(kernel_id)
        if clients is None:
            clients = self.kernels[kernel_id] = make()
        return clients

    async def forget(self, kernel_id: str, **close: Any) -> None:
        clients = self.kernels.pop(kernel_id, None)
        if clients is not None:
            await clients.close(**close)

    async def close(self) -> None:
        for kernel_id in list(self.kernels):
            await self.forget(kernel_id, code=1001, reason="server shutting down", flush=0.2)
