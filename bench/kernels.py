"""Kernel benchmarks of issue 3, the same code against each target: a server's kernel websocket
(v1 binary or legacy JSON) or the direct ZMQ floor. Server CPU is the server process's own
utime+stime (kernels are separate processes, not counted); the floor has no server, so no CPU."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from fixtures import KERNEL_NAME
from kclients import DirectKernel, KernelClient, Msg, WsKernelClient, ZmqKernelClient
from procstat import cpu_seconds, descendants, rss_bytes, tree_rss
from results import Result
from servers import ServerProc

@dataclass(frozen=True)
class KernelPlan:
    """How much work each kernel benchmark does."""

    start_reps: int = 5
    round_trips: int = 300
    print_mb: float = 20.0
    print_reps: int = 3
    flood: int = 20_000
    prints: int = 10_000  # print(i, flush=True) one by one
    obo_clients: tuple[int, ...] = (1, 2, 4)  # clients of the kernel in the one-by-one runs
    idle_kernels: int = 20
    deflate: bool = True  # offer permessage-deflate as browsers do


class Target:
    """Where kernels live: a server (``server`` set) or the bench itself (direct ZMQ)."""

    def __init__(self, server: ServerProc | None, workdir: Path, env: dict[str, str], plan: KernelPlan) -> None:
        self.server, self.workdir, self.env, self.plan = server, workdir, env, plan
        self.http = httpx.AsyncClient(headers=server.headers, timeout=120) if server else None

    @property
    def pid(self) -> int | None:
        return self.server.pid if self.server else None

    async def start_kernel(self) -> object:
        if self.server is None:
            return DirectKernel(self.workdir, self.env)
        assert self.http is not None
        reply = await self.http.post(self.server.url + "/api/kernels", json={"name": KERNEL_NAME})
        if reply.status_code != 201:
            raise RuntimeError(f"POST /api/kernels -> {reply.status_code}: {reply.text[:200]}")
        return reply.json()["id"]

    async def connect(self, kernel: object, protocol: str) -> KernelClient:
        if isinstance(kernel, DirectKernel):
            return ZmqKernelClient(kernel.info)
        assert self.server is not None
        return await WsKernelClient(self.server.ws_url, str(kernel), self.server.headers, protocol,
                                    self.plan.deflate).connect()

    async def stop_kernel(self, kernel: object) -> None:
        if isinstance(kernel, DirectKernel):
            await kernel.stop()
        else:
            assert self.http is not None and self.server is not None
            await self.http.delete(f"{self.server.url}/api/kernels/{kernel}")

    async def close(self) -> None:
        if self.http is not None:
            await self.http.aclose()


class Meter:
    """Server CPU of a target over many separate stretches (None for the direct floor)."""

    def __init__(self, target: Target) -> None:
        self.pid, self.seconds = target.pid, (0.0 if target.pid else None)

    def __enter__(self) -> Meter:
        self._start = cpu_seconds(self.pid) if self.pid else 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pid and self.seconds is not None:
            self.seconds += cpu_seconds(self.pid) - self._start

    def per(self, count: int) -> float | None:
        """Microseconds per item."""
        return self.seconds / count * 1e6 if self.seconds is not None and count else None


async def start_once(target: Target, attempts: int = 3) -> float:
    """Start a kernel, connect, and time it to the first kernel_info_reply; then stop it.

    A directly launched kernel that dies before answering (a port taken between choosing and
    binding it, on a busy machine) is launched again on fresh ports, as a provisioner would.
    """
    for attempt in range(attempts):
        t0 = time.perf_counter()
        kernel = await target.start_kernel()
        try:
            client = await target.connect(kernel, "v1")
            try:
                msg_id = await client.send("shell", "kernel_info_request", {})
                deadline = t0 + 120
                while True:
                    try:
                        async with asyncio.timeout(1.0):
                            while True:
                                msg = await client.recv()
                                if msg.channel == "shell" and msg.parent_id == msg_id:
                                    return time.perf_counter() - t0
                    except TimeoutError:
                        if isinstance(kernel, DirectKernel) and kernel.proc.poll() is not None:
                            break  # died: try again
                        if time.perf_counter() > deadline:
                            raise
            finally:
                await client.close()
        finally:
            await target.stop_kernel(kernel)
    raise RuntimeError(f"the kernel died before answering, {attempts} times")


# How long a benchmark may go without any message of its request before it is given up: a run
# is never cut for being slow (at load, a slow server still finishes), only for being stuck.
STALL = 60.0


async def execute(client: KernelClient, code: str, stall: float = STALL,
                  settle: float | None = None) -> tuple[list[Msg], float]:
    """Run ``code``; return the iopub messages of that request (up to idle) and the wall time to
    both the execute_reply and the idle status. TimeoutError when no message of the request
    arrives for ``stall`` seconds; with ``settle``, a request that was replied to is also done
    after ``settle`` silent seconds (a server that drops messages may drop the idle status too:
    the caller counts what is missing)."""
    t0 = time.perf_counter()
    msg_id = await client.send("shell", "execute_request", {
        "code": code, "silent": False, "store_history": False, "user_expressions": {},
        "allow_stdin": False, "stop_on_error": True})
    outputs, replied, idle = [], False, False
    async with Watchdog(stall) as progress:
        while not (replied and idle):
            if replied and settle is not None:
                try:
                    async with asyncio.timeout(settle):
                        msg = await client.recv()
                except TimeoutError:
                    break
            else:
                msg = await client.recv()
            if msg.parent_id != msg_id:
                continue
            progress()
            if msg.channel == "shell":
                replied = True
            elif msg.msg_type == "status":
                idle = idle or msg.content().get("execution_state") == "idle"
            else:
                outputs.append(msg)
    return outputs, time.perf_counter() - t0


class Watchdog:
    """``async with Watchdog(stall) as progress``: TimeoutError once ``stall`` seconds pass without
    a call of ``progress()`` (the deadline is moved at most once a second: calls stay cheap)."""

    def __init__(self, stall: float) -> None:
        self.stall = stall
        self._timeout = asyncio.timeout(stall)
        self._loop = asyncio.get_running_loop()
        self._moved = self._loop.time()

    async def __aenter__(self) -> Callable[[], None]:
        await self._timeout.__aenter__()
        return self.progress

    async def __aexit__(self, *exc: Any) -> bool | None:
        return await self._timeout.__aexit__(*exc)

    def progress(self) -> None:
        now = self._loop.time()
        if now - self._moved > 1.0:
            self._moved = now
            self._timeout.reschedule(now + self.stall)


FLOOD_CODE = """
_k = get_ipython().kernel
_p = _k.get_parent("shell")
for _i in range({n}):
    _k.session.send(_k.iopub_socket, "stream", {{"name": "stdout", "text": "x\\n"}}, parent=_p)
"""


async def flood(client: KernelClient, n: int) -> tuple[int, float]:
    """``n`` small stream messages sent as fast as the kernel can; returns how many arrived
    (waiting a grace second after idle for stragglers) and the time to the last one."""
    msg_id = await client.send("shell", "execute_request", {
        "code": FLOOD_CODE.format(n=n), "silent": False, "store_history": False, "user_expressions": {},
        "allow_stdin": False, "stop_on_error": True})
    got, last, idle = 0, 0.0, False
    t0 = time.perf_counter()
    try:
        async with Watchdog(STALL) as progress:
            while not idle:
                msg = await client.recv()
                if msg.parent_id == msg_id:
                    progress()
                    if msg.msg_type == "stream":
                        got, last = got + 1, time.perf_counter()
                    elif msg.msg_type == "status":
                        idle = msg.content().get("execution_state") == "idle"
        async with asyncio.timeout(1.0):
            while True:
                msg = await client.recv()
                if msg.parent_id == msg_id and msg.msg_type == "stream":
                    got, last = got + 1, time.perf_counter()
    except TimeoutError:
        pass
    return got, last - t0


async def idle_rss(target: Target) -> dict[str, Result]:
    """Server RSS (MB) with ``idle_kernels`` kernels started and idle; also the whole tree's."""
    assert target.server is not None
    kernels: list[object] = []
    try:
        for batch in range(0, target.plan.idle_kernels, 4):
            count = min(4, target.plan.idle_kernels - batch)
            kernels += await asyncio.gather(*(target.start_kernel() for _ in range(count)))
        await asyncio.sleep(2)
        pid = target.server.pid
        return {"rss20": Result(rss_bytes(pid) / 1e6, "MB", note=f"{len(descendants(pid))} processes"),
                "rss20_tree": Result(tree_rss(pid) / 1e6, "MB")}
    except Exception as exc:  # noqa: BLE001 - reported in the table
        return {"rss20": Result.failed("MB", f"{type(exc).__name__}: {str(exc)[:100]}")}
    finally:
        await asyncio.gather(*(target.stop_kernel(k) for k in kernels), return_exceptions=True)
