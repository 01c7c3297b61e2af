"""Kernel benchmarks of issue 3, the same code against each target: a server's kernel websocket
(v1 binary or legacy JSON) or the direct ZMQ floor. Server CPU is the server process's own
utime+stime (kernels are separate processes, not counted); the floor has no server, so no CPU."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from fixtures import KERNEL_NAME
from kclients import DirectKernel, KernelClient, WsKernelClient, ZmqKernelClient
from procstat import CpuMeter, descendants, rss_bytes, tree_rss
from results import Result, median, percentile
from servers import ServerProc

PROTOCOLS = ("v1", "legacy")


@dataclass(frozen=True)
class KernelPlan:
    """How much work each kernel benchmark does."""

    start_reps: int = 5
    round_trips: int = 300
    print_mb: float = 20.0
    print_reps: int = 3
    flood: int = 20_000
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


async def kernel_start(target: Target) -> Result:
    """Start to the first kernel_info_reply, through a fresh connection (median of reps)."""
    walls = []
    for _ in range(target.plan.start_reps):
        t0 = time.perf_counter()
        kernel = await target.start_kernel()
        client = await target.connect(kernel, "v1")
        try:
            await client.request("kernel_info_request", {}, timeout=120)
            walls.append(time.perf_counter() - t0)
        finally:
            await client.close()
            await target.stop_kernel(kernel)
    return Result(median(walls) * 1000, "ms")


async def execute(client: KernelClient, code: str, timeout: float = 120) -> tuple[list, float]:
    """Run ``code``; return the iopub messages of that request (up to idle) and the wall time to
    both the execute_reply and the idle status."""
    t0 = time.perf_counter()
    msg_id = await client.send("shell", "execute_request", {
        "code": code, "silent": False, "store_history": False, "user_expressions": {},
        "allow_stdin": False, "stop_on_error": True})
    outputs, replied, idle = [], False, False
    async with asyncio.timeout(timeout):
        while not (replied and idle):
            msg = await client.recv()
            if msg.parent_id != msg_id:
                continue
            if msg.channel == "shell":
                replied = True
            elif msg.msg_type == "status":
                idle = idle or msg.content().get("execution_state") == "idle"
            else:
                outputs.append(msg)
    return outputs, time.perf_counter() - t0


def _meter(target: Target) -> CpuMeter | _NoMeter:
    return CpuMeter(target.pid) if target.pid else _NoMeter()


class _NoMeter:
    seconds = None

    def __enter__(self) -> _NoMeter:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


async def round_trips(target: Target, client: KernelClient) -> tuple[Result, Result]:
    """``pass`` executed round after round: p50 and p99 (ms) and server CPU per relayed message."""
    for _ in range(20):
        await execute(client, "pass")
    walls, relayed = [], 0
    with _meter(target) as cpu:
        for _ in range(target.plan.round_trips):
            outputs, wall = await execute(client, "pass")
            walls.append(wall)
            relayed += 1 + 3 + len(outputs)  # request in; busy, idle, reply out; execute_input etc.
    per_msg = cpu.seconds / relayed * 1e6 if cpu.seconds is not None else None
    return (Result(percentile(walls, 50) * 1000, "ms", per_msg),
            Result(percentile(walls, 99) * 1000, "ms"))


async def big_print(target: Target, client: KernelClient) -> Result:
    """One print of ``print_mb`` MB: MB/s from request to idle (median of reps)."""
    size = int(target.plan.print_mb * 1_000_000)
    rates, cpus = [], []
    for _ in range(target.plan.print_reps):
        with _meter(target) as cpu:
            outputs, wall = await execute(client, f"print('x' * {size})")
        got = sum(m.nbytes for m in outputs if m.msg_type == "stream")
        if got < size:
            return Result.failed("MB/s", f"received {got} of {size} bytes")
        rates.append(size / 1e6 / wall)
        if cpu.seconds is not None:
            cpus.append(cpu.seconds)
    return Result(median(rates), "MB/s", median(cpus) * 1e6 if cpus else None,
                  note="cpu_us is per print")


FLOOD_CODE = """
_k = get_ipython().kernel
_p = _k.get_parent("shell")
for _i in range({n}):
    _k.session.send(_k.iopub_socket, "stream", {{"name": "stdout", "text": "x\\n"}}, parent=_p)
"""


async def flood(target: Target, client: KernelClient) -> tuple[Result, Result]:
    """``flood`` small stream messages sent as fast as the kernel can: msgs/s, server CPU per
    message, and how many arrived (waiting a grace second after idle for stragglers)."""
    n = target.plan.flood
    msg_id = await client.send("shell", "execute_request", {
        "code": FLOOD_CODE.format(n=n), "silent": False, "store_history": False, "user_expressions": {},
        "allow_stdin": False, "stop_on_error": True})
    got, last, idle = 0, 0.0, False
    with _meter(target) as cpu:
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(180):
                while not idle:
                    msg = await client.recv()
                    if msg.parent_id == msg_id:
                        if msg.msg_type == "stream":
                            got, last = got + 1, time.perf_counter()
                        elif msg.msg_type == "status":
                            idle = msg.content().get("execution_state") == "idle"
            with_grace = asyncio.timeout(1.0)
            async with with_grace:
                while True:
                    msg = await client.recv()
                    if msg.parent_id == msg_id and msg.msg_type == "stream":
                        got, last = got + 1, time.perf_counter()
        except TimeoutError:
            pass
    if not got:
        return Result.failed("msg/s", "no stream message arrived"), Result(0, f"of {n}")
    per_msg = cpu.seconds / got * 1e6 if cpu.seconds is not None else None
    return Result(got / (last - t0), "msg/s", per_msg), Result(got, f"of {n}")


async def idle_rss(target: Target) -> tuple[Result, Result]:
    """Server RSS (MB) with ``idle_kernels`` kernels started and idle; also the whole tree's."""
    assert target.server is not None
    kernels: list[object] = []
    try:
        for batch in range(0, target.plan.idle_kernels, 4):
            count = min(4, target.plan.idle_kernels - batch)
            kernels += await asyncio.gather(*(target.start_kernel() for _ in range(count)))
        await asyncio.sleep(2)
        pid = target.server.pid
        server = rss_bytes(pid) / 1e6
        tree = tree_rss(pid) / 1e6
        note = f"{len(descendants(pid))} processes under the server"
        return Result(server, "MB", note=note), Result(tree, "MB")
    finally:
        await asyncio.gather(*(target.stop_kernel(k) for k in kernels))


async def run_idle_kernels(target: Target) -> dict[str, Result]:
    """Server RSS with idle kernels (run on a fresh server: earlier phases leave memory behind)."""
    try:
        rss, tree = await idle_rss(target)
        return {"rss20": rss, "rss20_tree": tree}
    except Exception as exc:  # noqa: BLE001 - reported in the table
        return {"rss20": Result.failed("MB", f"{type(exc).__name__}: {str(exc)[:100]}")}


async def run_kernels(target: Target, protocols: tuple[str, ...] = PROTOCOLS) -> dict[str, Result]:
    """Every kernel benchmark against one target; failures are reported, not raised."""
    out: dict[str, Result] = {}

    async def guarded(name: str, unit: str, coro) -> None:
        try:
            await coro
        except Exception as exc:  # noqa: BLE001 - one broken benchmark must not stop the run
            out.setdefault(name, Result.failed(unit, f"{type(exc).__name__}: {str(exc)[:100]}"))

    async def start() -> None:
        out["k_start"] = await kernel_start(target)

    await guarded("k_start", "ms", start())
    kernel = None
    try:
        kernel = await target.start_kernel()
        for proto in protocols if target.server else ("zmq",):
            async def one(proto: str = proto) -> None:
                client = await target.connect(kernel, proto)
                try:
                    await client.request("kernel_info_request", {})
                    out[f"rt50_{proto}"], out[f"rt99_{proto}"] = await round_trips(target, client)
                    out[f"print_{proto}"] = await big_print(target, client)
                    out[f"flood_{proto}"], out[f"flood_n_{proto}"] = await flood(target, client)
                finally:
                    await client.close()
            await guarded(f"rt50_{proto}", "ms", one())
    except Exception as exc:  # noqa: BLE001
        out.setdefault("rt50_v1", Result.failed("ms", f"{type(exc).__name__}: {str(exc)[:100]}"))
    finally:
        if kernel is not None:
            await target.stop_kernel(kernel)
    return out
