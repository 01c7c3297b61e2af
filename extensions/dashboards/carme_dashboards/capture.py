"""Output widgets during a run: what a frontend does for ``with out: ...``, done by the executor.

ipywidgets' ``Output`` widget captures output by setting its ``msg_id`` to the running request's
id; the *frontend* is then expected to route that request's outputs into the widget's
``outputs`` and send them back to the kernel. While the server executes the notebook no page
owns that request, so the executor plays the frontend's part (as nbclient does for Voila):
outputs of a capturing widget go to the widget, not the cell, and at the end of the cell the
widget's new ``outputs`` are sent to the kernel as a widget ``update``, which ipywidgets echoes to
every connected page.

Only comm messages that can concern an Output widget are parsed: a ``comm_open`` whose content
mentions ``OutputModel``, and, once such a widget exists, a ``comm_msg`` that mentions
``msg_id`` or ``outputs``.
"""

from __future__ import annotations

from typing import Any

from nbformat import NotebookNode

from carme.kernels.message import KernelMessage

from .outputs import OutputCollector

OUTPUT_MODEL = "OutputModel"
OUTPUT_MODULE = "@jupyter-widgets/output"
WIDGET_TARGET = "jupyter.widget"
CAPTURED = frozenset({"stream", "display_data", "execute_result", "error", "clear_output"})


class OutputWidget:
    """The server's view of one Output widget: its outputs, and which request it captures."""

    def __init__(self, comm_id: str, outputs: Any) -> None:
        self.comm_id = comm_id
        self.collector = OutputCollector()
        self.collector.begin(0)
        self.set_outputs(outputs)
        self.msg_id = ""
        self.dirty = False

    def set_outputs(self, outputs: Any) -> None:
        """The kernel set ``outputs`` (``out.outputs = ...``, ``append_stdout``)."""
        if isinstance(outputs, list | tuple):
            self.collector.outputs[:] = [NotebookNode(o) for o in outputs if isinstance(o, dict)]
            self.collector.finish()

    def add(self, msg: KernelMessage) -> None:
        self.dirty = self.collector.add(msg) or self.dirty

    def take_update(self) -> dict[str, Any] | None:
        """The widget update to send to the kernel if outputs changed since the last one."""
        if not self.dirty:
            return None
        self.dirty = False
        return {"method": "update", "state": {"outputs": list(self.collector.finish())}, "buffer_paths": []}


class OutputWidgets:
    """Every Output widget opened during one run, and the capture stack per request id."""

    def __init__(self) -> None:
        self.widgets: dict[str, OutputWidget] = {}
        self._capturing: dict[str, list[OutputWidget]] = {}

    def on_comm(self, msg: KernelMessage) -> None:
        """A comm_open / comm_msg from the kernel (any; the cheap checks are done here)."""
        content_bytes = msg.frames[3]
        if msg.msg_type == "comm_open":
            if OUTPUT_MODEL.encode() not in content_bytes:
                return
            content = msg.content
            state = (content.get("data") or {}).get("state") or {}
            if (content.get("target_name") == WIDGET_TARGET and state.get("_model_name") == OUTPUT_MODEL
                    and state.get("_model_module") == OUTPUT_MODULE):
                widget = OutputWidget(str(content.get("comm_id")), state.get("outputs"))
                self.widgets[widget.comm_id] = widget
                self._set_state(widget, state)
        elif msg.msg_type == "comm_msg" and self.widgets:
            if b'"msg_id"' not in content_bytes and b'"outputs"' not in content_bytes:
                return
            widget = self.widgets.get(str(msg.content.get("comm_id")))
            data = msg.content.get("data") or {}
            if widget is not None and data.get("method") in ("update", "echo_update"):
                self._set_state(widget, data.get("state") or {})
        elif msg.msg_type == "comm_close" and self.widgets:
            widget = self.widgets.pop(str(msg.content.get("comm_id")), None)
            if widget is not None:
                self._stop(widget)

    def capturing(self, msg_id: str) -> OutputWidget | None:
        """The widget that captures the outputs of request ``msg_id`` (the innermost ``with``)."""
        stack = self._capturing.get(msg_id)
        return stack[-1] if stack else None

    def updates(self) -> list[tuple[str, dict[str, Any]]]:
        """``(comm_id, update data)`` for every widget whose outputs changed since the last call."""
        return [(w.comm_id, update) for w in self.widgets.values() if (update := w.take_update()) is not None]

    def _set_state(self, widget: OutputWidget, state: dict[str, Any]) -> None:
        if "outputs" in state:
            widget.set_outputs(state["outputs"])
        if "msg_id" in state:
            self._stop(widget)
            msg_id = state["msg_id"]
            if isinstance(msg_id, str) and msg_id:
                widget.msg_id = msg_id
                self._capturing.setdefault(msg_id, []).append(widget)

    def _stop(self, widget: OutputWidget) -> None:
        stack = self._capturing.get(widget.msg_id)
        if stack and widget in stack:
            stack.remove(widget)
            if not stack:
                del self._capturing[widget.msg_id]
        widget.msg_id = ""
