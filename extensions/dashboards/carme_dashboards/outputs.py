"""OutputCollector: the iopub messages of one notebook run, turned into nbformat outputs.

The rules are those of a notebook frontend (and nbclient): consecutive stream messages of the
same name merge into one output (carriage returns and backspaces applied, as a terminal shows
them); ``clear_output`` empties the cell's outputs now, or with ``wait=True`` just before its
next output; ``display_data`` / ``execute_result`` carrying ``transient.display_id`` are
remembered, and ``update_display_data`` replaces the data of every output shown with that id,
in whichever cell of the run it is.

One collector lives for one run of a notebook (display ids reach across cells). Messages come
as carme's :class:`~carme.kernels.message.KernelMessage` or as jupyter_client-style dicts; only
``msg_type`` and ``content`` are read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from nbformat import NotebookNode

# What a terminal does with "\r" (back to the line start: later text overwrites the line) and
# "\b" (erase the character before), as nbclient's stream coalescing applies them.
_CARRIAGE_RETURN = re.compile(r"[^\n]*\r(?=[^\n])")
_BACKSPACE = re.compile(r"[^\n]\x08")

OUTPUT_TYPES = frozenset({"stream", "display_data", "execute_result", "error"})


def message_parts(msg: Any) -> tuple[str, Mapping[str, Any]]:
    """``(msg_type, content)`` of a KernelMessage or of a message dict."""
    if isinstance(msg, Mapping):
        msg_type = msg.get("msg_type") or msg.get("header", {}).get("msg_type", "")
        return str(msg_type), msg.get("content") or {}
    return msg.msg_type, msg.content


def apply_control_characters(text: str) -> str:
    """``text`` with carriage returns and backspaces applied (progress bars collapse to their
    last state); a trailing ``"\\r"`` is kept, so text appended later still overwrites."""
    if "\b" in text:
        while True:
            text, count = _BACKSPACE.subn("", text)
            if not count:
                break
    if "\r" in text:
        text = _CARRIAGE_RETURN.sub("", text)
    return text


class OutputCollector:
    """Builds the outputs of each cell of one notebook run from its iopub messages.

    Call :meth:`begin` when a cell starts (it returns that cell's output list, which
    :meth:`add` fills), feed the cell's messages to :meth:`add`, and :meth:`finish` when it ends.
    """

    def __init__(self) -> None:
        self.outputs: list[NotebookNode] = []
        self.cell_index = -1
        self._clear_pending = False
        # display id -> [(cell index, output)]: every output shown with that id, in every cell.
        self._displays: dict[str, list[tuple[int, NotebookNode]]] = {}
        self._stream_parts: list[str] = []  # pieces of the last output when it is a stream
        self._updated: set[int] = set()

    # -- a cell's life ------------------------------------------------------------------------

    def begin(self, cell_index: int) -> list[NotebookNode]:
        """Start collecting for ``cell_index``; returns its (new, empty) output list."""
        self.finish()
        self.cell_index = cell_index
        self.outputs = []
        self._clear_pending = False
        self._updated = set()
        return self.outputs

    def finish(self) -> list[NotebookNode]:
        """Close the current cell: merge pending stream text; returns its outputs."""
        self._flush_stream()
        return self.outputs

    def updated_cells(self) -> set[int]:
        """Earlier cells whose outputs an ``update_display_data`` of this cell changed."""
        return {index for index in self._updated if index != self.cell_index}

    # -- messages -----------------------------------------------------------------------------

    def add(self, msg: Any) -> bool:
        """Apply one iopub message of the current cell; True when the outputs changed.

        Messages that carry no output (status, execute_input, comm_*) are ignored.
        """
        msg_type, content = message_parts(msg)
        if msg_type == "stream":
            self._stream(content)
        elif msg_type in ("display_data", "execute_result"):
            self._display(msg_type, content)
        elif msg_type == "update_display_data":
            return self._update_display(content)
        elif msg_type == "error":
            self._append(NotebookNode(output_type="error", ename=str(content.get("ename", "")),
                                      evalue=str(content.get("evalue", "")),
                                      traceback=[str(line) for line in content.get("traceback") or []]))
        elif msg_type == "clear_output":
            if content.get("wait"):
                self._clear_pending = True
            else:
                self._clear()
        else:
            return False
        return True

    def _stream(self, content: Mapping[str, Any]) -> None:
        name = str(content.get("name", "stdout"))
        text = str(content.get("text", ""))
        if self._clear_pending:
            self._clear()
        last = self.outputs[-1] if self.outputs else None
        if last is not None and last.get("output_type") == "stream" and last.get("name") == name:
            if not self._stream_parts:  # joined already (finish()): go on from its text
                self._stream_parts = [last.get("text", "")]
            self._stream_parts.append(text)
            return
        self._flush_stream()
        self.outputs.append(NotebookNode(output_type="stream", name=name, text=""))
        self._stream_parts = [text]

    def _flush_stream(self) -> None:
        """Join the pieces of the last stream output (joined once, not on every message)."""
        if self._stream_parts and self.outputs:
            self.outputs[-1]["text"] = apply_control_characters("".join(self._stream_parts))
        self._stream_parts = []

    def _display(self, msg_type: str, content: Mapping[str, Any]) -> None:
        output = NotebookNode(output_type=msg_type, data=NotebookNode(content.get("data") or {}),
                              metadata=NotebookNode(content.get("metadata") or {}))
        if msg_type == "execute_result":
            output["execution_count"] = content.get("execution_count")
        self._append(output)
        display_id = (content.get("transient") or {}).get("display_id")
        if isinstance(display_id, str) and display_id:
            self._displays.setdefault(display_id, []).append((self.cell_index, output))

    def _update_display(self, content: Mapping[str, Any]) -> bool:
        display_id = (content.get("transient") or {}).get("display_id")
        shown = self._displays.get(display_id) if isinstance(display_id, str) else None
        if not shown:
            return False  # an id never displayed in this run: nothing to update (as frontends)
        for cell_index, output in shown:
            output["data"] = NotebookNode(content.get("data") or {})
            output["metadata"] = NotebookNode(content.get("metadata") or {})
            self._updated.add(cell_index)
        return True

    def _append(self, output: NotebookNode) -> None:
        if self._clear_pending:
            self._clear()
        self._flush_stream()
        self.outputs.append(output)

    def _clear(self) -> None:
        """Empty the current cell's outputs and forget its displays (their ids stay usable elsewhere)."""
        self._clear_pending = False
        self._stream_parts = []
        cleared = {id(output) for output in self.outputs}
        self.outputs.clear()
        for display_id, shown in list(self._displays.items()):
            kept = [(index, output) for index, output in shown if id(output) not in cleared]
            if kept:
                self._displays[display_id] = kept
            else:
                del self._displays[display_id]
