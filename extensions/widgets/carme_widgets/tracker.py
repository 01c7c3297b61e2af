"""One kernel's widgets: its widget store, its server-side comms, fed by the kernel's messages.

:class:`KernelWidgets` is subscribed to one kernel: every iopub message from the kernel, and
every shell message a frontend sends to it, passes :meth:`KernelWidgets.on_message`. That is the
hot path, so it looks at the already-parsed header only and returns at once unless the message
is a ``comm_open``, ``comm_msg`` or ``comm_close``; only those have their content parsed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from carme.kernels.message import COMM_TYPES

from .comms import Comm, CommMessage
from .state import BufferPathError, WidgetStore

if TYPE_CHECKING:
    from carme.kernels.kernel import Kernel
    from carme.kernels.message import KernelMessage

log = logging.getLogger("carme.widgets")

TargetHandler = Callable[[Comm, CommMessage], Awaitable[None] | None]


class KernelWidgets:
    """The widget state and server-side comms of one kernel.

    ``targets`` is the service's shared registry of server-side comm targets (target name ->
    handler), consulted when the kernel opens a comm.
    """

    def __init__(self, kernel: Kernel, targets: Mapping[str, TargetHandler]) -> None:
        self.kernel = kernel
        self.kernel_id: str = kernel.id
        self.store = WidgetStore()
        self.comms: dict[str, Comm] = {}
        self._targets = targets
        self._shell: Any = None
        self._identity = f"carme-widgets-{uuid.uuid4().hex}".encode()
        self.unsubscribe: list[Callable[[], None]] = []  # set by the service when it subscribes

    # -- the hot path -----------------------------------------------------------------------

    def on_message(self, msg: KernelMessage) -> None:
        """A message from the kernel (iopub) or to it (shell); cheap unless it is a comm message."""
        msg_type = msg.msg_type
        if msg_type in COMM_TYPES:
            self._on_comm(msg, msg_type)

    def _on_comm(self, msg: KernelMessage, msg_type: str) -> None:
        channel = msg.channel
        if channel != "iopub" and channel != "shell":
            return
        frames = msg.frames
        try:
            # Parsed here rather than through msg.content: the store keeps (and fills with
            # buffers) what it is given, so it must own it.
            content = orjson.loads(frames[3])
            self.store.apply(msg_type, content, frames[4:] if len(frames) > 4 else ())
        except (ValueError, BufferPathError) as exc:  # orjson.JSONDecodeError is a ValueError
            log.warning("kernel %s: ignored a malformed %s for widget state: %s", self.kernel_id, msg_type, exc)
            return
        if channel == "iopub" and (self.comms or self._targets):
            self._dispatch(msg, msg_type, content.get("comm_id"), content.get("target_name"))
        elif channel == "shell" and msg_type == "comm_msg":
            self._answer_request_states(msg, content)

    def _answer_request_states(self, msg: KernelMessage, content: dict[str, Any]) -> None:
        """A page asks for every widget's state (ipywidgets' control comm, on load): while the
        kernel is busy its shell waits behind the running cell, so answer that page at once from
        the server's copy. The kernel answers too once idle; the page has closed the comm by then."""
        data = content.get("data")
        comm_id = content.get("comm_id")
        if (self.kernel.execution_state != "busy" or not isinstance(data, dict)
                or data.get("method") != "request_states" or not isinstance(comm_id, str)
                or not self.store.is_control(comm_id)):
            return
        states, buffers = self.store.update_states()
        answer = self.kernel.session.msg("iopub", "comm_msg", {"comm_id": comm_id, "data": states},
                                         parent=msg, buffers=buffers, synthetic=True)
        self.kernel.send_to_client(msg.session, answer)

    # -- server-side comms ------------------------------------------------------------------

    def _dispatch(self, msg: KernelMessage, msg_type: str, comm_id: Any, target: Any) -> None:
        """Route a kernel's comm message to the server-side comm (or target handler) it is for."""
        comm = self.comms.get(comm_id)
        if msg_type == "comm_open":
            handler = self._targets.get(target) if isinstance(target, str) else None
            if comm is None and handler is not None:
                self._new_comm(comm_id, target)._opening(handler, self._comm_message(comm_id, msg))
            return
        if comm is None:
            return
        if msg_type == "comm_msg":
            comm._deliver(self._comm_message(comm_id, msg))
        else:
            self.comms.pop(comm_id, None)
            comm._closed(self._comm_message(comm_id, msg))

    @staticmethod
    def _comm_message(comm_id: str, msg: KernelMessage) -> CommMessage:
        data = msg.content.get("data")
        return CommMessage(comm_id, data if isinstance(data, dict) else {}, list(msg.buffers), msg.metadata, msg)

    def _new_comm(self, comm_id: str, target_name: str) -> Comm:
        comm = Comm(self.kernel_id, comm_id, target_name, self._send)
        self.comms[comm_id] = comm
        comm.on_close(lambda _msg: self.comms.pop(comm_id, None))  # type: ignore[arg-type,func-returns-value]
        return comm

    async def open_comm(self, target_name: str, data: dict[str, Any] | None = None,
                        metadata: Mapping[str, Any] | None = None, buffers: Sequence[bytes] = (),
                        comm_id: str | None = None) -> Comm:
        """Open a comm to the kernel's ``target_name`` (sends ``comm_open`` on shell)."""
        comm = self._new_comm(comm_id or uuid.uuid4().hex, target_name)
        content = {"comm_id": comm.comm_id, "target_name": target_name, "data": data or {}}
        await self._send("comm_open", content, metadata, buffers)
        return comm

    async def _send(self, msg_type: str, content: dict[str, Any], metadata: Mapping[str, Any] | None,
                    buffers: Sequence[bytes]) -> None:
        """Send a comm message to the kernel on shell, as a frontend does, and track it."""
        msg = self.kernel.session.msg("shell", msg_type, content, metadata=dict(metadata or {}), buffers=buffers)
        if self._shell is None:
            self._shell = self.kernel.connect("shell", self._identity)
        await self._shell.send_multipart(self.kernel.session.serialize(msg))
        self._on_comm(msg, msg_type)  # the server is a frontend too: its updates change the state

    # -- lifecycle --------------------------------------------------------------------------

    def on_lifecycle(self, event: str) -> None:
        """Kernel lifecycle events: a restart (manual or automatic) wipes the kernel's widgets."""
        if event in ("restarting", "restarted"):
            self.restarted()

    def restarted(self) -> None:
        """The kernel restarted: its widgets and comms are gone."""
        self.store.clear()
        for comm in list(self.comms.values()):
            comm._closed(None)
        self.comms.clear()

    def close(self) -> None:
        """The kernel stopped (or the server stops): unsubscribe, close comms and the shell socket."""
        for unsubscribe in self.unsubscribe:
            unsubscribe()
        self.unsubscribe.clear()
        self.restarted()
        if self._shell is not None:
            self._shell.close(linger=0)
            self._shell = None
