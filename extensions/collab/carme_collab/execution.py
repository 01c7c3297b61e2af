"""Server-side execution: code cells of live documents run in carme kernels, outputs written into
the shared document as they arrive.

So outputs land in the document even when no browser is open, every client sees the cell running
(``execution_state``), and a reload or every browser closing loses nothing (the document is saved
like any edit). Requests are queued per kernel and run one after the other, in order, as
jupyter-server-nbmodel does; each is a :class:`Execution` whose progress and result the REST API
reports.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pycrdt import Array, Map, Text

if TYPE_CHECKING:
    from carme.kernels.kernel import Kernel
    from carme.kernels.message import KernelMessage

    from .service import CollabService

log = logging.getLogger("carme.collab.execution")

KEEP_FINISHED = 256  # finished requests kept per kernel for GET .../requests/ID (the oldest go first)
OUTPUT_TYPES = ("stream", "display_data", "execute_result", "error", "update_display_data", "clear_output")


@dataclass
class Execution:
    """One execution request."""

    request_id: str
    kernel_id: str
    code: str | None
    cell_id: str | None = None
    document_id: str | None = None
    document_path: str | None = None
    status: str = "queued"  # queued, running, complete
    outputs: list[dict[str, Any]] = field(default_factory=list)
    reply_status: str | None = None  # ok, error, aborted
    execution_count: int | None = None
    failure: str | None = None  # why it could not run at all

    def context(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "kernel_id": self.kernel_id,
                "request_url": f"/api/kernels/{self.kernel_id}/requests/{self.request_id}",
                "cell_id": self.cell_id, "document_path": self.document_path}

    def report(self) -> dict[str, Any]:
        """jupyter-server-nbmodel's request body (``outputs`` is a JSON string there too)."""
        body = {**self.context(), "pending": self.status != "complete", "request_status": self.status,
                "outputs": json.dumps(self.outputs)}
        if self.status == "complete":
            body.update(status=self.reply_status, execution_count=self.execution_count)
            if self.failure is not None:
                body["error"] = self.failure
        return body


class CellWriter:
    """Writes one execution's outputs into a cell of a shared notebook (nbformat output shapes;
    stream text as a Yjs Text, as jupyter_ydoc stores it)."""

    def __init__(self, cell: Map | None) -> None:
        self.cell = cell
        self._clear_pending = False
        self._display: dict[str, list[int]] = {}

    def start(self) -> None:
        if self.cell is None:
            return
        with self.cell.doc.transaction():
            outputs = self.cell.get("outputs")
            if isinstance(outputs, Array):
                outputs.clear()
            else:
                self.cell["outputs"] = Array()
            self.cell["execution_count"] = None
            self.cell["execution_state"] = "running"

    def finish(self, execution_count: int | None) -> None:
        if self.cell is None:
            return
        with self.cell.doc.transaction():
            self.cell["execution_count"] = execution_count
            self.cell["execution_state"] = "idle"

    def add(self, outputs: list[dict[str, Any]], msg_type: str, content: dict[str, Any]) -> None:
        """Apply one iopub message to ``outputs`` (the plain list) and the cell."""
        if msg_type == "clear_output":
            if content.get("wait"):
                self._clear_pending = True
            else:
                self._clear(outputs)
            return
        if msg_type == "update_display_data":
            self._update_display(outputs, content)
            return
        if self._clear_pending:
            self._clear(outputs)
        output = to_output(msg_type, content)
        youtputs = self.cell.get("outputs") if self.cell is not None else None
        if msg_type == "stream" and outputs and outputs[-1].get("output_type") == "stream" \
                and outputs[-1].get("name") == output["name"]:
            outputs[-1]["text"] += output["text"]
            if isinstance(youtputs, Array) and len(youtputs):
                text = youtputs[len(youtputs) - 1].get("text")
                if isinstance(text, Text):
                    text += output["text"]
            return
        display_id = (content.get("transient") or {}).get("display_id")
        if display_id:
            self._display.setdefault(display_id, []).append(len(outputs))
        outputs.append(output)
        if isinstance(youtputs, Array):
            youtputs.append(to_youtput(output))

    def _clear(self, outputs: list[dict[str, Any]]) -> None:
        self._clear_pending = False
        outputs.clear()
        self._display.clear()
        youtputs = self.cell.get("outputs") if self.cell is not None else None
        if isinstance(youtputs, Array):
            youtputs.clear()

    def _update_display(self, outputs: list[dict[str, Any]], content: dict[str, Any]) -> None:
        display_id = (content.get("transient") or {}).get("display_id")
        youtputs = self.cell.get("outputs") if self.cell is not None else None
        for index in self._display.get(display_id or "", []):
            if index < len(outputs):
                outputs[index].update(data=content.get("data", {}), metadata=content.get("metadata", {}))
                if isinstance(youtputs, Array) and index < len(youtputs):
                    youtputs[index] = to_youtput(outputs[index])


def to_output(msg_type: str, content: dict[str, Any]) -> dict[str, Any]:
    """The nbformat output of an iopub message."""
    if msg_type == "stream":
        return {"output_type": "stream", "name": content.get("name", "stdout"), "text": content.get("text", "")}
    if msg_type == "error":
        return {"output_type": "error", "ename": content.get("ename", ""), "evalue": content.get("evalue", ""),
                "traceback": list(content.get("traceback", []))}
    output = {"output_type": msg_type, "data": content.get("data", {}), "metadata": content.get("metadata", {})}
    if msg_type == "execute_result":
        output["execution_count"] = content.get("execution_count")
    return output


def to_youtput(output: dict[str, Any]) -> Map:
    shared = dict(output)
    if shared.get("output_type") == "stream":
        shared["text"] = Text(shared["text"])
    return Map(shared)


class CellExecutor:
    """Per-kernel queues of execution requests, and their results."""

    def __init__(self, service: CollabService) -> None:
        self.service = service
        self.requests: dict[str, OrderedDict[str, Execution]] = {}
        self._queues: dict[str, asyncio.Queue[Execution]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}

    def submit(self, kernel: Kernel, code: str | None, cell_id: str | None, document_id: str | None,
               document_path: str | None = None) -> Execution:
        execution = Execution(uuid.uuid4().hex, kernel.id, code, cell_id, document_id, document_path)
        requests = self.requests.setdefault(kernel.id, OrderedDict())
        requests[execution.request_id] = execution
        self._trim(requests)
        queue = self._queues.setdefault(kernel.id, asyncio.Queue())
        queue.put_nowait(execution)
        if kernel.id not in self._workers:
            self._workers[kernel.id] = asyncio.get_running_loop().create_task(self._work(kernel, queue))
        return execution

    @staticmethod
    def _trim(requests: OrderedDict[str, Execution]) -> None:
        finished = [rid for rid, ex in requests.items() if ex.status == "complete"]
        for rid in finished[:max(0, len(finished) - KEEP_FINISHED)]:
            del requests[rid]

    def get(self, kernel_id: str, request_id: str) -> Execution | None:
        return self.requests.get(kernel_id, {}).get(request_id)

    def pending(self, kernel_id: str) -> list[Execution]:
        return [ex for ex in self.requests.get(kernel_id, {}).values() if ex.status != "complete"]

    def forget(self, kernel_id: str) -> None:
        """The kernel stopped: its queue goes; what was waiting ends with an error."""
        worker = self._workers.pop(kernel_id, None)
        if worker is not None:
            worker.cancel()
        self._queues.pop(kernel_id, None)
        for execution in self.requests.pop(kernel_id, {}).values():
            if execution.status != "complete":
                execution.status, execution.failure = "complete", "the kernel stopped"

    async def close(self) -> None:
        for kernel_id in list(self._workers):
            self.forget(kernel_id)

    async def _work(self, kernel: Kernel, queue: asyncio.Queue[Execution]) -> None:
        while True:
            execution = await queue.get()
            try:
                await self._run(kernel, execution)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("executing cell %s in kernel %s failed", execution.cell_id, kernel.id)
                execution.failure = str(exc)
            finally:
                if execution.status != "complete" or execution.failure:
                    execution.status = "complete"

    async def _run(self, kernel: Kernel, execution: Execution) -> None:
        cell = await self._cell(execution)
        code = execution.code
        if code is None:
            code = str(cell["source"]) if cell is not None else None
        if code is None:
            execution.failure = f"no cell {execution.cell_id} in document {execution.document_id}"
            return
        writer = CellWriter(cell)
        execution.status = "running"
        writer.start()
        request = kernel.session.msg("shell", "execute_request", {
            "code": code, "silent": False, "store_history": True, "user_expressions": {},
            "allow_stdin": False, "stop_on_error": True})
        done = asyncio.Event()

        def on_message(msg: KernelMessage) -> None:
            if msg.parent_msg_id != request.msg_id:
                return
            kind = msg.msg_type
            if kind == "execute_input":
                execution.execution_count = msg.content.get("execution_count")
            elif kind in OUTPUT_TYPES:
                content = msg.content
                if kind == "execute_result":
                    execution.execution_count = content.get("execution_count", execution.execution_count)
                if kind == "error":
                    execution.reply_status = "error"
                writer.add(execution.outputs, kind, content)
            elif kind == "status" and msg.content.get("execution_state") == "idle":
                done.set()

        def on_lifecycle(event: str) -> None:
            if event in ("restarting", "dead", "shutdown"):
                execution.reply_status = "error"
                execution.failure = f"the kernel is {event}"
                done.set()

        await kernel.wait_ready()
        unsubscribe = kernel.subscribe(on_message)
        unwatch = kernel.on_lifecycle(on_lifecycle)
        shell = kernel.connect("shell", uuid.uuid4().bytes)
        try:
            await shell.send_multipart(kernel.session.serialize(request))
            await done.wait()
        finally:
            unsubscribe()
            unwatch()
            shell.close(linger=0)
            execution.reply_status = execution.reply_status or "ok"
            writer.finish(execution.execution_count)
            execution.status = "complete"

    async def _cell(self, execution: Execution) -> Map | None:
        """The shared cell the request names (its document is opened if it is not)."""
        if not execution.cell_id or not (execution.document_id or execution.document_path):
            return None
        try:
            if execution.document_id:
                document = await self.service.document_by_room(execution.document_id)
            else:
                document = await self.service.document(execution.document_path or "")
        except Exception as exc:
            log.warning("no document %s for cell %s: %s", execution.document_id or execution.document_path,
                        execution.cell_id, exc)
            return None
        for cell in getattr(document.doc, "ycells", []):
            if cell.get("id") == execution.cell_id:
                return cell if cell.get("cell_type") == "code" else None
        return None

