"""The transport seam: a kernel whose messages its provisioner carries, not local ZMQ sockets.

A provisioner whose kernel lives elsewhere (on a gateway, behind a websocket) receives each of the
kernel's messages whole, in carme's process. Handing them on through local ZMQ sockets would cost,
per message, a signature made and checked and two socket hops. Such a provisioner may instead
expose ``transport``, an object following :class:`KernelTransport`. The kernel reads it with
``getattr`` after each launch (absent or None: the kernel is reached over ZMQ at its connection
info, as every local kernel is, and nothing here runs).

With a transport:

- the server's own requests (kernel_info, interrupt_request) and the iopub reader go through
  :class:`TransportChannels` instead of :class:`~carme.kernels.channels.ServerChannels`;
- each websocket client's requests go to ``transport.send`` with the client's session id as
  ``identity``, and the replies the transport delivers with that identity reach that client alone
  (through :meth:`Kernel.send_to_client <carme.kernels.kernel.Kernel.send_to_client>`);
- ``kernel.connect`` (an extension's own sockets) still connects to the connection info: a
  provisioner with a transport keeps serving ZMQ sockets there, off the hot path;
- the heartbeat is not pinged: whether the kernel is alive is the provisioner's ``poll``.

Parts are ``[header, parent_header, metadata, content, *buffers]`` as bytes, unsigned both ways:
signatures guard the ZMQ sockets other local processes could reach, and these messages never pass
through one (the transport vouches for what it delivers: it received it over its own
authenticated connection).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from .channels import Channels
from .connection import ConnectionInfo
from .message import KernelMessage

log = logging.getLogger("carme.kernels.transport")

# deliver(channel, identity, parts): one message from the kernel (see KernelTransport.attach)
Deliver = Callable[[str, bytes | None, list[bytes]], None]


@runtime_checkable
class KernelTransport(Protocol):
    """How a provisioner hands a kernel's messages to carme and takes carme's (module docstring)."""

    def attach(self, deliver: Deliver) -> None:
        """From now on call ``deliver(channel, identity, parts)`` for every message from the kernel,
        on the event loop: ``channel`` is ``iopub``, ``shell``, ``control`` or ``stdin``;
        ``identity`` the one :meth:`send` was given with the request it answers (None on iopub).
        A later ``attach`` replaces the earlier ``deliver``."""
        ...

    def detach(self) -> None:
        """Stop delivering (the kernel is closing, or its channels are made anew)."""
        ...

    async def send(self, channel: str, identity: bytes | None, parts: list[bytes]) -> None:
        """One message to the kernel on ``channel`` (``shell``, ``control`` or ``stdin``), from
        ``identity`` (a websocket client's session id; None: the server). Returns once the
        transport took it: it may wait while the transport is full, and never drops it unless
        the kernel is gone."""
        ...


class TransportChannels(Channels):
    """The server's channels of a kernel reached through a :class:`KernelTransport`."""

    def __init__(self, transport: KernelTransport, info: ConnectionInfo, on_iopub: Callable[[KernelMessage], None],
                 on_client_reply: Callable[[str, KernelMessage], None],
                 on_flush: Callable[[], None] = lambda: None) -> None:
        super().__init__(info, on_iopub, on_flush)
        self.transport = transport
        self._on_client_reply = on_client_reply
        self._sends: set[asyncio.Future[None]] = set()
        transport.attach(self._deliver)

    def send(self, msg: KernelMessage) -> None:
        task = asyncio.ensure_future(self._send(msg))
        self._sends.add(task)
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Future[None]) -> None:
        self._sends.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("a request to the kernel's transport failed: %r", task.exception())

    async def _send(self, msg: KernelMessage) -> None:
        await self.transport.send(msg.channel, None, msg.frames)

    def _deliver(self, channel: str, identity: bytes | None, parts: list[bytes]) -> None:
        try:
            msg = KernelMessage(channel, parts)
        except ValueError:  # orjson's decode error is one
            log.warning("dropped a %s message from the transport: too few parts or a header that is not "
                        "a JSON object", channel)
            return
        try:
            if channel == "iopub":
                try:
                    self._on_iopub(msg)
                finally:
                    self._on_flush()
            elif identity is None:
                self._reply(msg)
            else:
                self._on_client_reply(identity.decode("utf-8", "replace"), msg)
        except Exception:  # the transport's reader must survive a failing handler
            log.exception("handling %r from the transport failed", msg)

    async def ping(self, timeout: float) -> bool:
        return True  # no heartbeat here: the provisioner's poll says whether the kernel is gone

    async def close(self) -> None:
        self.transport.detach()
        for task in list(self._sends):
            task.cancel()
        await super().close()
