"""Server-side comms: the server talking to a kernel's comm targets as a frontend would.

A :class:`Comm` is one end of a Jupyter comm (``comm_open`` / ``comm_msg`` / ``comm_close``)
held by server code. It is made by :meth:`carme_widgets.WidgetsService.open_comm` (the server
opens it) or handed to a target handler registered with
:meth:`carme_widgets.WidgetsService.register_target` (the kernel opened it). Messages from the
kernel arrive on iopub and are routed here by comm id; the comm delivers them to ``on_msg``
callbacks and to :meth:`Comm.recv`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from carme.kernels.message import KernelMessage

log = logging.getLogger("carme.widgets.comms")


class CommClosedError(RuntimeError):
    """The comm was closed (by either side, or because its kernel restarted or stopped)."""


@dataclass
class CommMessage:
    """One message received on a comm: its ``data``, binary ``buffers`` and the whole message."""

    comm_id: str
    data: dict[str, Any]
    buffers: list[bytes] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    msg: KernelMessage | None = None


MessageCallback = Callable[[CommMessage], Awaitable[None] | None]
CloseCallback = Callable[[CommMessage | None], Awaitable[None] | None]
Sender = Callable[[str, dict[str, Any], Mapping[str, Any] | None, Sequence[bytes]], Awaitable[None]]


class Comm:
    """One comm between server code and a kernel.

    ``send``/``close`` go to the kernel on its shell channel; what the kernel sends arrives on
    ``on_msg`` callbacks (called in order, awaited if async) and, for code that prefers to pull,
    on :meth:`recv` (a queue that is filled only once :meth:`recv` has been called).
    """

    def __init__(self, kernel_id: str, comm_id: str, target_name: str, sender: Sender) -> None:
        self.kernel_id = kernel_id
        self.comm_id = comm_id
        self.target_name = target_name
        self.closed = False
        self._sender = sender
        self._on_msg: list[MessageCallback] = []
        self._on_close: list[CloseCallback] = []
        self._queue: asyncio.Queue[CommMessage | None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # While an async open handler runs, kernel messages wait here, so callbacks it registers
        # see every message (the kernel may send right after comm_open).
        self._held: list[tuple[str, CommMessage | None]] | None = None

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<Comm {self.comm_id} target={self.target_name!r} kernel={self.kernel_id} {state}>"

    # -- sending ----------------------------------------------------------------------------

    async def send(self, data: dict[str, Any] | None = None, buffers: Sequence[bytes] = (),
                   metadata: Mapping[str, Any] | None = None) -> None:
        """Send ``comm_msg`` with ``data`` (and binary ``buffers``) to the kernel."""
        if self.closed:
            raise CommClosedError(f"comm {self.comm_id} is closed")
        await self._sender("comm_msg", {"comm_id": self.comm_id, "data": data or {}}, metadata, buffers)

    async def close(self, data: dict[str, Any] | None = None) -> None:
        """Send ``comm_close`` to the kernel and close this end (closing twice does nothing)."""
        if self.closed:
            return
        self._closed(None)
        await self._sender("comm_close", {"comm_id": self.comm_id, "data": data or {}}, None, ())

    # -- receiving --------------------------------------------------------------------------

    def on_msg(self, callback: MessageCallback) -> None:
        """Call ``callback(message)`` for every message the kernel sends on this comm."""
        self._on_msg.append(callback)

    def on_close(self, callback: CloseCallback) -> None:
        """Call ``callback(message or None)`` once when the comm closes, whoever closed it."""
        self._on_close.append(callback)

    async def recv(self, timeout: float | None = None) -> CommMessage:
        """The next message from the kernel; raises :class:`CommClosedError` once closed.

        Messages are queued from the first call on (earlier ones went to ``on_msg`` only).
        """
        if self._queue is None:
            self._queue = asyncio.Queue()
            if self.closed:
                self._queue.put_nowait(None)
        item = await asyncio.wait_for(self._queue.get(), timeout)
        if item is None:
            self._queue.put_nowait(None)  # every later recv fails too
            raise CommClosedError(f"comm {self.comm_id} is closed")
        return item

    # -- called by the service when a message for this comm arrives ---------------------------

    def _opening(self, handler: Callable[[Comm, CommMessage], Awaitable[None] | None], message: CommMessage) -> None:
        """Run the target handler of a comm the kernel opened, holding messages until it is done."""
        try:
            result = handler(self, message)
        except Exception:
            log.exception("comm %s: the handler of target %r failed", self.comm_id, self.target_name)
            return
        if inspect.isawaitable(result):
            self._held = []
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(self._opened)

    def _opened(self, task: asyncio.Task[None]) -> None:
        self._task_done(task)
        held, self._held = self._held or [], None
        for kind, message in held:
            if kind == "msg":
                assert message is not None
                self._deliver(message)
            else:
                self._closed(message)

    def _deliver(self, message: CommMessage) -> None:
        if self._held is not None:
            self._held.append(("msg", message))
            return
        if self._queue is not None:
            self._queue.put_nowait(message)
        for callback in self._on_msg:
            self._call(callback, message)

    def _closed(self, message: CommMessage | None) -> None:
        if self.closed:
            return
        if self._held is not None:
            self._held.append(("close", message))
            return
        self.closed = True
        if self._queue is not None:
            self._queue.put_nowait(None)
        for callback in self._on_close:
            self._call(callback, message)

    def _call(self, callback: Callable[[Any], Awaitable[None] | None], arg: Any) -> None:
        try:
            result = callback(arg)
        except Exception:
            log.exception("comm %s callback failed", self.comm_id)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("comm %s callback failed", self.comm_id, exc_info=task.exception())
