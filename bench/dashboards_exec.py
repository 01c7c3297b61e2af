"""What the dashboards executor adds on the server: NotebookExecutor vs a bare ZMQ client.

    .venv/bin/python bench/dashboards_exec.py            # full run, table on stdout
    .venv/bin/python bench/dashboards_exec.py --quick    # small smoke run

One carme Server (no HTTP, no extensions) in this process starts one ipykernel, already warm,
as a pooled kernel would be. On it, interleaved over rounds (median kept):

- first cell: from the call to the first CellResult of a one-cell notebook (``print(1)``), vs
  the same execute_request sent by a bare client (its own shell DEALER and iopub SUB, waiting
  for the reply and the idle status), in milliseconds. The issue's target for the whole page is
  "first cell visible from a pooled kernel <= 100 ms"; this is the executor's share of it;
- a notebook of 20 small cells, start to last result, vs 20 bare requests;
- a stream flood (20,000 flushed prints, one iopub message each): the server process's own CPU
  (``time.process_time``: the kernel is another process) with the executor collecting the
  outputs, vs only waiting for the idle status on the same subscription (the server's iopub
  reader runs in both): the difference per message is what the executor adds;
- the executor's own work per iopub message, in isolation: 20,000 stream messages (as received
  from ZMQ: only the header parsed) through the parent check and the OutputCollector;
- rendering: the flood's merged output and a 20-cell notebook's outputs to HTML.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_notebook

from carme import create_app
from carme.kernels.kernel import Kernel
from carme.kernels.message import KernelMessage
from carme_dashboards.executor import NotebookExecutor
from carme_dashboards.outputs import OutputCollector
from carme_dashboards.render import OutputRenderer

FLOOD = "for i in range({n}): print(i, flush=True)"


class BareClient:
    """A minimal client of its own (shell DEALER, iopub SUB): the floor. Connected anew for each
    measurement (not timed), so it never wades through other runs' output."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.iopub = kernel.connect("iopub")
        self.shell = kernel.connect("shell", uuid.uuid4().bytes)

    async def connect(self) -> None:
        # A SUB socket misses what is published before its subscription is live: probe until
        # the kernel's status for a kernel_info_request arrives (as clients do).
        while True:
            probe = self.kernel.session.msg("shell", "kernel_info_request")
            await self.shell.send_multipart(self.kernel.session.serialize(probe))
            await self.shell.recv_multipart()
            if await self._until_idle(probe.msg_id, timeout=0.2):
                return

    async def execute(self, code: str) -> None:
        """One execute_request: its reply on shell and its idle status on iopub."""
        session = self.kernel.session
        msg = session.msg("shell", "execute_request", {"code": code, "silent": False, "store_history": False,
                                                       "user_expressions": {}, "allow_stdin": False})
        await self.shell.send_multipart(session.serialize(msg))
        await self.shell.recv_multipart()
        await self._until_idle(msg.msg_id, timeout=300)

    async def _until_idle(self, msg_id: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not await self.iopub.poll(int(left * 1000)):
                return False
            msg = self.kernel.session.deserialize("iopub", await self.iopub.recv_multipart())
            if (msg is not None and msg.msg_type == "status" and msg.parent_msg_id == msg_id
                    and msg.content.get("execution_state") == "idle"):
                return True
        return False

    def close(self) -> None:
        self.iopub.close(linger=0)
        self.shell.close(linger=0)


async def executor_run(kernel: Kernel, nb: NotebookNode, first_only: bool = False) -> float:
    """Seconds from the call to the first (or last) result."""
    start = time.perf_counter()
    async with NotebookExecutor(kernel) as executor, contextlib.aclosing(executor.execute(nb)) as results:
        async for _result in results:
            if first_only:
                return time.perf_counter() - start
    return time.perf_counter() - start


async def waited_only(kernel: Kernel, code: str) -> None:
    """The flood's baseline: send the request, wait for idle on the server's subscription."""
    idle = asyncio.Event()
    msg = kernel.session.msg("shell", "execute_request", {"code": code, "silent": False, "store_history": False,
                                                          "user_expressions": {}, "allow_stdin": False})

    def on_message(m: KernelMessage) -> None:
        if m.msg_type == "status" and m.parent_msg_id == msg.msg_id and m.content.get("execution_state") == "idle":
            idle.set()

    unsubscribe = kernel.subscribe(on_message)
    shell = kernel.connect("shell", uuid.uuid4().bytes)
    try:
        await shell.send_multipart(kernel.session.serialize(msg))
        await asyncio.wait_for(idle.wait(), 300)
    finally:
        unsubscribe()
        shell.close(linger=0)


async def timed(action: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) of one awaited action."""
    wall, cpu = time.perf_counter(), time.process_time()
    await action()
    return time.perf_counter() - wall, time.process_time() - cpu


async def bench(rounds: int, cells: int, flood: int) -> list[tuple[str, str, str, str]]:
    one = new_notebook(cells=[new_code_cell("print(1)")])
    many = new_notebook(cells=[new_code_cell(f"print({i})") for i in range(cells)])
    flood_nb = new_notebook(cells=[new_code_cell(FLOOD.format(n=flood))])
    with tempfile.TemporaryDirectory() as home:
        app = create_app(home, token="bench", extensions=[], config_files=False)
        await app.server.start()
        try:
            kernel = await app.server.kernels.start_kernel("python3")
            await executor_run(kernel, many)  # warm both paths once
            await bare_run(kernel, ["print(1)"])
            first_exec, first_bare, many_exec, many_bare, flood_exec, flood_wait = ([] for _ in range(6))
            for i in range(rounds):
                pair = [(first_exec, lambda: executor_run(kernel, one, first_only=True)),
                        (first_bare, lambda: bare_run(kernel, ["print(1)"]))]
                for target, action in pair if i % 2 else reversed(pair):
                    target.append(await action())
                many_exec.append(await executor_run(kernel, many))
                many_bare.append(await bare_run(kernel, [f"print({i})" for i in range(cells)]))
                flood_exec.append(await timed(lambda: executor_run(kernel, flood_nb)))
                flood_wait.append(await timed(lambda: waited_only(kernel, FLOOD.format(n=flood))))
            nb = new_notebook(cells=[new_code_cell(FLOOD.format(n=flood))])
            async with NotebookExecutor(kernel) as executor:
                flood_outputs = [r.outputs async for r in executor.execute(nb)][0]
                many_outputs = [r.outputs async for r in executor.execute(many)]
        finally:
            await app.server.stop()
    renderer = OutputRenderer()
    per_message = per_message_work(flood)
    render_flood = _best(lambda: renderer.render_outputs(flood_outputs))
    render_many = _best(lambda: [renderer.render_outputs(o) for o in many_outputs])
    cpu_exec = statistics.median(c for _, c in flood_exec)
    cpu_wait = statistics.median(c for _, c in flood_wait)
    ms = 1000.0
    return [
        ("first cell (print(1)), ms", f"{statistics.median(first_exec) * ms:.2f}",
         f"{statistics.median(first_bare) * ms:.2f}", "target for the whole page: <= 100 ms"),
        (f"{cells} small cells, ms", f"{statistics.median(many_exec) * ms:.1f}",
         f"{statistics.median(many_bare) * ms:.1f}", ""),
        (f"stream flood ({flood} msgs), wall s", f"{statistics.median(w for w, _ in flood_exec):.2f}",
         f"{statistics.median(w for w, _ in flood_wait):.2f}", "bare = wait for idle only"),
        ("server CPU per flood message, us", f"{cpu_exec / flood * 1e6:.1f}", f"{cpu_wait / flood * 1e6:.1f}",
         f"executor adds {(cpu_exec - cpu_wait) / flood * 1e6:.1f} us/msg"),
        ("executor work per stream message (in isolation), us", f"{per_message * 1e6:.2f}", "", ""),
        (f"render the flood output ({flood} lines), ms", f"{render_flood * ms:.2f}", "", ""),
        (f"render {cells} cells' outputs, ms", f"{render_many * ms:.2f}", "", ""),
    ]


async def bare_run(kernel: Kernel, codes: list[str]) -> float:
    """Seconds for a connected bare client to run ``codes`` one after the other."""
    bare = BareClient(kernel)
    try:
        await bare.connect()
        start = time.perf_counter()
        for code in codes:
            await bare.execute(code)
        return time.perf_counter() - start
    finally:
        bare.close()


def per_message_work(count: int) -> float:
    """Seconds per message for what the executor does with one of its cell's stream messages."""
    parent = orjson.dumps({"msg_id": "request", "msg_type": "execute_request", "session": "s"})
    frames = [[orjson.dumps({"msg_id": f"m{i}", "msg_type": "stream", "session": "k"}), parent, b"{}",
               orjson.dumps({"name": "stdout", "text": f"{i}\n"})] for i in range(count)]

    def work() -> None:
        collector = OutputCollector()
        collector.begin(0)
        for parts in frames:
            msg = KernelMessage("iopub", list(parts))  # as the server's reader makes it: header parsed
            if msg.parent_msg_id == "request":
                collector.add(msg)
        collector.finish()

    return _best(work) / count


def _best(action: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    rounds, cells, flood = (2, 5, 1000) if args.quick else (args.rounds, 20, 20000)
    rows = asyncio.run(bench(rounds, cells, flood))
    print(f"dashboards executor, {rounds} rounds, median ({Path(sys.executable).name})\n")
    print("| measure | executor | bare client | note |\n|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
