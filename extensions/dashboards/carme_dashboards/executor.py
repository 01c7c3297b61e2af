"""NotebookExecutor: runs a notebook's cells in order on a carme kernel, one result per cell.

nbclient's semantics on carme's own kernel layer (nbclient needs jupyter_client):

- code cells are sent as ``execute_request`` with ``store_history=False`` and
  ``allow_stdin=False``, one at a time; a cell is done when its ``execute_reply`` has arrived
  and the kernel has published ``status: idle`` for it (its last output is in by then);
- the run stops after the first cell that fails, unless ``allow_errors`` or the cell has the tag
  ``raises-exception``; a cell tagged ``skip-execution`` is not run; markdown and raw cells are
  yielded at once, without a round trip to the kernel;
- a cell that runs past ``timeout`` seconds interrupts the kernel and ends the run with a timeout
  error; a kernel that dies, is restarted or is shut down ends it with a dead-kernel error;
- output captured by ipywidgets' Output widget (``with out:``) goes to the widget, as a frontend
  would route it (see :mod:`carme_dashboards.capture`).

Every request goes out with one session id, :attr:`NotebookExecutor.session_id`, in its header,
so a kernel websocket policy can tell the executor's messages from a visitor's. Outputs are
read from the kernel's iopub subscription (the server's single reader: no extra socket, no
slow-joiner loss); only messages whose parent is the running request are parsed further.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nbformat import NotebookNode

from carme.kernels.message import KernelMessage
from carme.kernels.session import Session

from .capture import CAPTURED, OutputWidgets
from .outputs import OutputCollector

if TYPE_CHECKING:
    from carme.kernels.kernel import Kernel

log = logging.getLogger("carme.dashboards.executor")

SKIP_TAG = "skip-execution"
RAISES_TAG = "raises-exception"
# iopub messages that never belong to a cell's outputs: skipped before their parent header is read.
_NOT_OUTPUT = frozenset({"execute_input", "debug_event"})
_COMM = frozenset({"comm_open", "comm_msg", "comm_close"})


@dataclass(frozen=True)
class CellError:
    """Why a cell failed. ``kind`` is ``"exception"`` (the code raised), ``"timeout"`` (it ran past
    the timeout and the kernel was interrupted) or ``"dead"`` (the kernel died, restarted or was
    shut down while it ran, or was not running)."""

    kind: str
    ename: str
    evalue: str
    traceback: tuple[str, ...] = ()


@dataclass
class CellResult:
    """One cell of a run. ``outputs`` are nbformat outputs (also set on ``cell.outputs``);
    ``skipped`` is true for a ``skip-execution`` cell; ``updated_cells`` are indices of earlier
    cells whose outputs an ``update_display_data`` of this cell changed (re-render those)."""

    index: int
    cell: NotebookNode
    outputs: list[NotebookNode]
    error: CellError | None = None
    skipped: bool = False
    updated_cells: tuple[int, ...] = ()


class KernelDied(RuntimeError):
    """The kernel died, restarted or was shut down during a request."""


class ExecutionFailed(RuntimeError):
    """:meth:`NotebookExecutor.run_silent`: the code raised in the kernel."""

    def __init__(self, ename: str, evalue: str) -> None:
        super().__init__(f"{ename}: {evalue}")
        self.ename = ename
        self.evalue = evalue


class _Request:
    """One request in flight: its reply, its idle status, and (for a cell) its outputs.

    ``reply`` resolves with the execute_reply content, ``done`` once the idle status has come
    too; both resolve with None when the kernel dies first.
    """

    def __init__(self, msg_id: str, collector: OutputCollector | None) -> None:
        loop = asyncio.get_running_loop()
        self.msg_id = msg_id
        self.collector = collector
        self.reply: asyncio.Future[dict[str, Any] | None] = loop.create_future()
        self.done: asyncio.Future[dict[str, Any] | None] = loop.create_future()
        self._idle = False

    def on_reply(self, content: dict[str, Any]) -> None:
        if not self.reply.done():
            self.reply.set_result(content)
        self._check()

    def on_idle(self) -> None:
        self._idle = True
        self._check()

    def _check(self) -> None:
        if self._idle and self.reply.done() and not self.done.done():
            self.done.set_result(self.reply.result())

    def kill(self) -> None:
        for future in (self.reply, self.done):
            if not future.done():
                future.set_result(None)


class NotebookExecutor:
    """Executes notebooks on one running kernel (see the module docstring).

    ``interrupt`` is how to interrupt the kernel on a timeout (default ``kernel.interrupt``;
    pass the KernelManager's ``interrupt_kernel`` bound to the id to have the action emitted as an
    event); ``interrupt_grace`` is how long to wait, after interrupting, for the cell to finish.
    Call :meth:`close` (or use ``async with``) when done with the kernel.
    """

    def __init__(self, kernel: Kernel, *, session_id: str | None = None,
                 interrupt: Callable[[], Awaitable[None]] | None = None, interrupt_grace: float = 5.0) -> None:
        self.kernel = kernel
        self.session_id = session_id or uuid.uuid4().hex
        # The kernel's key, our own session id: the kernel verifies our signatures, and our
        # header.session names the executor.
        self.session = Session(kernel.session.key, session_id=self.session_id, username="carme-dashboards")
        self.interrupt = interrupt or kernel.interrupt
        self.interrupt_grace = interrupt_grace
        self._shell: Any = None
        self._shell_info: dict[str, Any] = {}
        self._reader: asyncio.Task[None] | None = None
        self._request: _Request | None = None
        self._widgets = OutputWidgets()
        self._dead: str | None = None
        self._lock = asyncio.Lock()
        self._unsubscribe: list[Callable[[], None]] = []

    # -- public API ---------------------------------------------------------------------------

    async def execute(self, notebook: NotebookNode, *, timeout: float | None = None,
                      allow_errors: bool = False) -> AsyncIterator[CellResult]:
        """Run every cell of ``notebook`` in order; yield each cell's result as soon as it is done.

        Stops after a failed cell (see the module docstring). ``timeout`` is per cell, in seconds
        (None: no limit). Each code cell's ``outputs`` and ``execution_count`` are set in place.
        Closing the iterator early (``aclose``) ends the run between cells.
        """
        async with self._lock:
            self._dead = None  # a kernel restarted since an earlier run is usable again
            self._widgets = OutputWidgets()
            collector = OutputCollector()
            for index, cell in enumerate(notebook.cells):
                result = await self._run_cell(index, cell, collector, timeout)
                yield result
                if result.error is None:
                    continue
                if result.error.kind == "exception" and (allow_errors or RAISES_TAG in _tags(cell)):
                    continue
                return

    async def run_silent(self, code: str, *, timeout: float | None = None) -> dict[str, Any]:
        """Run setup code (``silent=True``: no execute_input, no execute_result, no history);
        returns the ``execute_reply`` content. Raises :class:`ExecutionFailed` if the code raised,
        :class:`KernelDied` if the kernel died, TimeoutError after ``timeout``."""
        async with self._lock:
            self._dead = None
            request = await self._send(code, silent=True, stop_on_error=True, collector=None)
            try:
                reply = await asyncio.wait_for(asyncio.shield(request.reply), timeout)
            finally:
                self._request = None
        if reply is None:
            raise KernelDied(self._dead or "the kernel died")
        if reply.get("status") == "error":
            raise ExecutionFailed(str(reply.get("ename", "")), str(reply.get("evalue", "")))
        return reply

    async def close(self) -> None:
        """Stop listening to the kernel and close the executor's socket."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None
        if self._shell is not None:
            self._shell.close(linger=0)
            self._shell = None

    async def __aenter__(self) -> NotebookExecutor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- one cell -----------------------------------------------------------------------------

    async def _run_cell(self, index: int, cell: NotebookNode, collector: OutputCollector,
                        timeout: float | None) -> CellResult:
        if cell.get("cell_type") != "code":
            return CellResult(index, cell, [])
        outputs = collector.begin(index)
        cell["outputs"] = outputs
        if SKIP_TAG in _tags(cell):
            return CellResult(index, cell, outputs, skipped=True)
        source = _source(cell)
        if not source.strip():
            return CellResult(index, cell, outputs)  # nothing to run (nbclient does not send it)
        error: CellError | None
        try:
            request = await self._send(source, silent=False, stop_on_error=RAISES_TAG not in _tags(cell),
                                       collector=collector)
            reply = await asyncio.wait_for(asyncio.shield(request.done), timeout)
            if reply is None:
                raise KernelDied(self._dead or "the kernel died")
            error = _error_of(reply)
            cell["execution_count"] = reply.get("execution_count")
        except TimeoutError:
            error = await self._timed_out(timeout)
        except KernelDied as exc:
            error = CellError("dead", "DeadKernelError", str(exc))
        finally:
            self._request = None
            collector.finish()
        await self._sync_widgets()
        return CellResult(index, cell, outputs, error, updated_cells=tuple(sorted(collector.updated_cells())))

    async def _timed_out(self, timeout: float | None) -> CellError:
        """Interrupt the kernel, give the cell a moment to end (its outputs so far stay), and
        report a timeout."""
        log.warning("kernel %s: a cell ran past %s s; interrupting", self.kernel.id, timeout)
        request = self._request
        try:
            await self.interrupt()
            if request is not None:
                await asyncio.wait_for(asyncio.shield(request.done), self.interrupt_grace)
        except Exception as exc:  # an interrupt that failed or did not end the cell: still a timeout
            log.warning("kernel %s: the interrupted cell did not end: %r", self.kernel.id, exc)
        return CellError("timeout", "CellTimeoutError",
                         f"A cell timed out while it was being executed, after {timeout} seconds.")

    async def _sync_widgets(self) -> None:
        """Send Output widgets the outputs they captured during the cell, as a frontend does.

        Once per cell, not per output: the kernel handles comm messages only after the cell anyway.
        """
        updates = self._widgets.updates()
        if not updates or self._shell is None or self._dead is not None:
            return
        for comm_id, data in updates:
            msg = self.session.msg("shell", "comm_msg", {"comm_id": comm_id, "data": data})
            await self._shell.send_multipart(self.session.serialize(msg))

    # -- requests -----------------------------------------------------------------------------

    async def _send(self, code: str, *, silent: bool, stop_on_error: bool,
                    collector: OutputCollector | None) -> _Request:
        try:
            await self.kernel.wait_ready()  # the kernel may still be starting or restarting
            self._listen()
        except RuntimeError as exc:  # KernelDeadError: shut down, or dead for good
            raise KernelDied(str(exc)) from None
        if self._dead is not None:
            raise KernelDied(self._dead)
        msg = self.session.msg("shell", "execute_request", {
            "code": code, "silent": silent, "store_history": False, "user_expressions": {},
            "allow_stdin": False, "stop_on_error": stop_on_error})
        request = _Request(msg.msg_id, collector)
        self._request = request
        await self._shell.send_multipart(self.session.serialize(msg))
        return request

    def _listen(self) -> None:
        """Connect on first use (again if a restart moved the kernel to new ports): the shell
        socket and its reader, the iopub and lifecycle subscriptions."""
        if self._shell is not None and self._shell_info == self.kernel.connection_info:
            return
        if self._reader is not None:
            self._reader.cancel()
        if self._shell is not None:
            self._shell.close(linger=0)
        # A fresh ZMQ identity: the kernel's ROUTER ignores a new peer that reuses a live one.
        self._shell = self.kernel.connect("shell", uuid.uuid4().bytes)
        self._shell_info = dict(self.kernel.connection_info)
        self._reader = asyncio.ensure_future(self._read_replies(self._shell))
        if not self._unsubscribe:
            self._unsubscribe = [self.kernel.subscribe(self._on_iopub), self.kernel.on_lifecycle(self._on_lifecycle)]

    # -- the kernel's side --------------------------------------------------------------------

    async def _read_replies(self, shell: Any) -> None:
        while True:
            msg = self.session.deserialize("shell", await shell.recv_multipart())
            request = self._request
            if msg is not None and request is not None and msg.parent_msg_id == request.msg_id:
                request.on_reply(msg.content)

    def _on_iopub(self, msg: KernelMessage) -> None:
        request = self._request
        if request is None:
            return
        msg_type = msg.msg_type
        if msg_type in _NOT_OUTPUT:
            return
        if msg.synthetic:  # the server's own restarting/dead status
            self._on_lifecycle(str(msg.content.get("execution_state", "dead")))
            return
        if msg.parent_msg_id != request.msg_id:
            return
        if msg_type == "status":
            if msg.content.get("execution_state") == "idle":
                request.on_idle()
        elif request.collector is None:
            return
        elif msg_type in _COMM:
            self._widgets.on_comm(msg)
        elif msg_type in CAPTURED and (widget := self._widgets.capturing(request.msg_id)) is not None:
            widget.add(msg)
        else:
            request.collector.add(msg)

    def _on_lifecycle(self, event: str) -> None:
        reasons = {"restarting": "the kernel died and is restarting", "dead": "the kernel died",
                   "shutdown": "the kernel was shut down", "restarted": "the kernel was restarted"}
        if event not in reasons:
            return
        self._dead = reasons[event]
        if self._request is not None:
            self._request.kill()


def _tags(cell: NotebookNode) -> list[str]:
    tags = (cell.get("metadata") or {}).get("tags") or []
    return tags if isinstance(tags, list) else []


def _source(cell: NotebookNode) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _error_of(reply: dict[str, Any]) -> CellError | None:
    status = reply.get("status")
    if status == "error":
        return CellError("exception", str(reply.get("ename", "")), str(reply.get("evalue", "")),
                         tuple(str(line) for line in reply.get("traceback") or []))
    if status == "aborted":
        return CellError("exception", "ExecutionAborted", "The kernel aborted the execution request.")
    return None
