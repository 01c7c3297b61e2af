"""WidgetsService: the widgets extension's public Python API, published as ``server.services["widgets"]``.

It keeps one :class:`~carme_widgets.tracker.KernelWidgets` per running kernel (attached when the
kernel starts) and offers other extensions and embedding products:

- the widget state of a kernel in the notebook widget-state format (:meth:`WidgetsService.state`);
- comms to a kernel (:meth:`WidgetsService.open_comm`) and handlers for comms a kernel opens
  (:meth:`WidgetsService.register_target`);
- setting a widget's state as a frontend would (:meth:`WidgetsService.set_state`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .comms import Comm
from .state import WIDGET_TARGET, WidgetStore, remove_buffers
from .tracker import KernelWidgets, TargetHandler

if TYPE_CHECKING:
    from carme.kernels.kernel import Kernel

log = logging.getLogger("carme.widgets")


class UnknownKernelError(KeyError):
    """No running kernel has this id (or it started before the widgets extension)."""


class WidgetsService:
    """Server-held widget state and server-side comms for every running kernel."""

    def __init__(self) -> None:
        self.kernels: dict[str, KernelWidgets] = {}
        self.targets: dict[str, TargetHandler] = {}

    # -- kernel lifecycle (called by the plugin's hooks) ----------------------------------------

    def attach(self, kernel: Kernel) -> KernelWidgets:
        """Start tracking ``kernel``: subscribe to its messages (once per kernel)."""
        existing = self.kernels.get(kernel.id)
        if existing is not None:
            return existing
        tracked = KernelWidgets(kernel, self.targets)
        self.kernels[kernel.id] = tracked
        tracked.unsubscribe = [
            kernel.subscribe(tracked.on_message),  # the kernel's side: iopub
            kernel.subscribe_inbound(tracked.on_message),  # the frontends' side: what they send on shell
            kernel.on_lifecycle(tracked.on_lifecycle),
        ]
        return tracked

    def detach(self, kernel_id: str) -> None:
        """``kernel_id`` stopped: drop everything kept for it."""
        tracked = self.kernels.pop(kernel_id, None)
        if tracked is not None:
            tracked.close()

    def close(self) -> None:
        for kernel_id in list(self.kernels):
            self.detach(kernel_id)

    def _get(self, kernel_id: str) -> KernelWidgets:
        try:
            return self.kernels[kernel_id]
        except KeyError:
            raise UnknownKernelError(kernel_id) from None

    # -- widget state -------------------------------------------------------------------------

    def store(self, kernel_id: str) -> WidgetStore:
        """The live widget models of a kernel (raises :class:`UnknownKernelError`)."""
        return self._get(kernel_id).store

    def state(self, kernel_id: str) -> dict[str, Any]:
        """The kernel's widget state as ``application/vnd.jupyter.widget-state+json`` 2.0."""
        return self._get(kernel_id).store.export()

    async def set_state(self, kernel_id: str, model_id: str, state: Mapping[str, Any]) -> None:
        """Change a widget's traits as a frontend would: an ``update`` the kernel applies and echoes.

        ``bytes`` values are sent as binary buffers. Raises :class:`UnknownKernelError`, or
        ``KeyError`` when the kernel has no such widget.
        """
        tracked = self._get(kernel_id)
        if model_id not in tracked.store:
            raise KeyError(f"kernel {kernel_id} has no widget {model_id}")
        plain, paths, buffers = remove_buffers(state)
        data = {"method": "update", "state": plain, "buffer_paths": paths}
        await tracked._send("comm_msg", {"comm_id": model_id, "data": data}, None, buffers)

    # -- comms --------------------------------------------------------------------------------

    async def open_comm(self, kernel_id: str, target_name: str, data: dict[str, Any] | None = None,
                        metadata: Mapping[str, Any] | None = None, buffers: Sequence[bytes] = ()) -> Comm:
        """Open a comm from the server to ``target_name`` in the kernel; returns its :class:`Comm`.

        The kernel must have registered ``target_name`` (else it closes the comm at once, which
        the comm's ``on_close`` callbacks see).
        """
        return await self._get(kernel_id).open_comm(target_name, data, metadata, buffers)

    def comm(self, kernel_id: str, comm_id: str) -> Comm | None:
        """A server-side comm by id, or None."""
        tracked = self.kernels.get(kernel_id)
        return tracked.comms.get(comm_id) if tracked is not None else None

    def register_target(self, target_name: str, handler: TargetHandler) -> Callable[[], None]:
        """Call ``handler(comm, message)`` when any kernel opens a comm on ``target_name``.

        ``handler`` may be async. Returns a function that unregisters it. The widget target
        (``jupyter.widget``) belongs to the frontends and cannot be taken.
        """
        if target_name == WIDGET_TARGET:
            raise ValueError(f"{WIDGET_TARGET!r} is the frontends' widget target; it cannot be served by the server")
        if target_name in self.targets:
            raise ValueError(f"comm target {target_name!r} already has a handler")
        self.targets[target_name] = handler

        def unregister() -> None:
            if self.targets.get(target_name) is handler:
                del self.targets[target_name]

        return unregister
