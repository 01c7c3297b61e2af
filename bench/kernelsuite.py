"""The kernel benchmarks run over all targets at once, round-robin, so every target sees the same
machine noise: start reps alternate between targets, round trips run in alternating blocks."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field

from kclients import KernelClient
from kernels import Meter, Target, execute, flood, start_once
from results import Result, median, percentile

log = logging.getLogger("bench")
PROTOCOLS = ("v1", "legacy")
BLOCK = 25


@dataclass
class Lane:
    """One client of one target's kernel: (label, protocol), with what it has measured so far."""

    label: str
    proto: str
    target: Target
    client: KernelClient
    kernel: object
    meter: Meter
    walls: list[float] = field(default_factory=list)
    relayed: int = 0
    failed: str = ""


def _failed(unit: str, exc: BaseException) -> Result:
    return Result.failed(unit, f"{type(exc).__name__}: {str(exc)[:100]}")


async def _starts(targets: dict[str, Target], out: dict[str, dict[str, Result]]) -> None:
    walls: dict[str, list[float]] = {label: [] for label in targets}
    plan = next(iter(targets.values())).plan
    for _ in range(plan.start_reps):
        for label, target in targets.items():
            if label in out and "k_start" in out[label]:
                continue
            try:
                walls[label].append(await start_once(target))
            except Exception as exc:  # noqa: BLE001 - one broken target must not stop the others
                out[label]["k_start"] = _failed("ms", exc)
    for label, values in walls.items():
        if values and "k_start" not in out[label]:
            out[label]["k_start"] = Result(median(values) * 1000, "ms")


async def _open_lanes(targets: dict[str, Target], out: dict[str, dict[str, Result]]) -> list[Lane]:
    """A kernel of its own for every (target, protocol): iopub goes to every client of a kernel, so
    a shared kernel would flood the lane that is not reading."""
    lanes = []
    for label, target in targets.items():
        for proto in PROTOCOLS if target.server else ("zmq",):
            kernel = None
            try:
                kernel = await target.start_kernel()
                client = await target.connect(kernel, proto)
                await client.request("kernel_info_request", {})
                for _ in range(20):  # warm-up
                    await execute(client, "pass")
                lanes.append(Lane(label, proto, target, client, kernel, Meter(target)))
            except Exception as exc:  # noqa: BLE001
                out[label][f"rt50_{proto}"] = _failed("ms", exc)
                if kernel is not None:
                    await _stop(target, kernel)
    return lanes


async def _stop(target: Target, kernel: object) -> None:
    try:
        await target.stop_kernel(kernel)
    except Exception:  # noqa: BLE001
        log.warning("could not stop a kernel")


async def _round_trips(lanes: list[Lane], rounds: int, out: dict[str, dict[str, Result]]) -> None:
    for _ in range(max(1, rounds // BLOCK)):
        for lane in lanes:
            if lane.failed:
                continue
            try:
                with lane.meter:
                    for _ in range(min(BLOCK, rounds)):
                        outputs, wall = await execute(lane.client, "pass")
                        lane.walls.append(wall)
                        lane.relayed += 4 + len(outputs)  # request in; busy, reply, idle (+ execute_input) out
            except Exception as exc:  # noqa: BLE001
                lane.failed = f"{type(exc).__name__}: {str(exc)[:100]}"
    for lane in lanes:
        if lane.failed:
            out[lane.label][f"rt50_{lane.proto}"] = Result.failed("ms", lane.failed)
            continue
        out[lane.label][f"rt50_{lane.proto}"] = Result(percentile(lane.walls, 50) * 1000, "ms",
                                                      lane.meter.per(lane.relayed))
        out[lane.label][f"rt99_{lane.proto}"] = Result(percentile(lane.walls, 99) * 1000, "ms")


async def _prints(lanes: list[Lane], mb: float, reps: int, out: dict[str, dict[str, Result]]) -> None:
    size = int(mb * 1_000_000)
    # Output as real programs print it (base64 of random bytes): a run of 'x' would flatter any
    # server that compresses websocket frames. Made once per kernel, outside the timing.
    for lane in lanes:
        if not lane.failed:
            try:
                await execute(lane.client, "import base64 as _b, os as _o; "
                                           f"_big = _b.b64encode(_o.urandom({size * 3 // 4})).decode()")
            except Exception as exc:  # noqa: BLE001
                lane.failed = f"{type(exc).__name__}: {str(exc)[:100]}"
    rates: dict[int, list[float]] = {id(lane): [] for lane in lanes}
    meters = {id(lane): Meter(lane.target) for lane in lanes}
    for _ in range(reps):
        for lane in lanes:
            key = f"print_{lane.proto}"
            if lane.failed or key in out[lane.label]:
                continue
            try:
                with meters[id(lane)]:
                    outputs, wall = await execute(lane.client, "print(_big)")
                got = sum(m.nbytes for m in outputs if m.msg_type == "stream")
                if got < size:
                    out[lane.label][key] = Result.failed("MB/s", f"received {got} of {size} bytes")
                rates[id(lane)].append(size / 1e6 / wall)
            except Exception as exc:  # noqa: BLE001
                out[lane.label][key] = _failed("MB/s", exc)
    for lane in lanes:
        if rates[id(lane)] and f"print_{lane.proto}" not in out[lane.label]:
            out[lane.label][f"print_{lane.proto}"] = Result(median(rates[id(lane)]), "MB/s",
                                                            meters[id(lane)].per(len(rates[id(lane)])),
                                                            note="cpu_us is per print")


async def _floods(lanes: list[Lane], n: int, out: dict[str, dict[str, Result]]) -> None:
    for lane in lanes:
        if lane.failed:
            continue
        meter = Meter(lane.target)
        try:
            with meter:
                got, wall = await flood(lane.client, n)
        except Exception as exc:  # noqa: BLE001
            out[lane.label][f"flood_{lane.proto}"] = _failed("msg/s", exc)
            continue
        out[lane.label][f"flood_n_{lane.proto}"] = Result(got, f"of {n}")
        out[lane.label][f"flood_{lane.proto}"] = (Result(got / wall, "msg/s", meter.per(got)) if got
                                                  else Result.failed("msg/s", "no stream message arrived"))


PRINTS_CODE = "for _i in range({n}):\n    print(_i, flush=True)"


class Follower:
    """A further client of a lane's kernel reading everything, as a second browser tab does; it
    counts the stream messages of each request and notes which requests went idle."""

    def __init__(self, client: KernelClient) -> None:
        self.client = client
        self.streams: Counter[str | None] = Counter()
        self.idle: set[str | None] = set()
        self._loop = asyncio.get_running_loop()
        self.last = self._loop.time()
        self._task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        while True:
            msg = await self.client.recv()
            self.last = self._loop.time()
            if msg.msg_type == "stream":
                self.streams[msg.parent_id] += 1
            elif msg.msg_type == "status" and msg.content().get("execution_state") == "idle":
                self.idle.add(msg.parent_id)

    async def wait_idle(self, msg_id: str | None, settle: float) -> None:
        """Until this client has seen the request go idle, or received nothing for ``settle``
        seconds (the request is over: a server that dropped messages dropped the rest)."""
        while msg_id not in self.idle:
            if self._task.done():
                self._task.result()
            if self._loop.time() - self.last > settle:
                return
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self.client.close()


SETTLE = 5.0  # silent seconds after which a replied request is taken as over (see execute)


async def _obo_run(lane: Lane, code: str, n: int, clients: int) -> tuple[float | None, float, int]:
    """One one-by-one run with ``clients`` clients of the kernel: server CPU per message (of the
    kernel's ``n`` or more), the rate at the lane's client, and how many stream messages the
    clients missed (stock jupyter_server drops messages when a client's iopub socket falls
    1,000 behind).

    The lane's client reconnects first with a new session id: a server forgets clients that went
    away with another session id then (carme would keep buffering for them otherwise, a cost
    that belongs to no run)."""
    if lane.target.server is not None:
        await lane.client.close()
        lane.client = await lane.target.connect(lane.kernel, lane.proto)
    followers = [Follower(await lane.target.connect(lane.kernel, lane.proto)) for _ in range(clients - 1)]
    try:
        await execute(lane.client, "pass")  # every client connected and subscribed
        meter = Meter(lane.target)
        with meter:
            outputs, wall = await execute(lane.client, code, settle=SETTLE)
            streams = [m for m in outputs if m.msg_type == "stream"]
            msg_id = streams[0].parent_id if streams else None
            for follower in followers:
                await follower.wait_idle(msg_id, SETTLE)
        sent = max(n, len(streams))  # a print is now and then split in two messages
        lost = (sent - len(streams)) + sum(max(0, sent - f.streams[msg_id]) for f in followers)
        return meter.per(sent), len(streams) / wall, lost
    finally:
        for follower in followers:
            await follower.close()


def _slope(points: dict[int, float]) -> float:
    """Least-squares slope of server CPU per message against the number of clients."""
    xs, ys = list(points), list(points.values())
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


async def _one_by_one(lanes: list[Lane], n: int, reps: int, out: dict[str, dict[str, Result]]) -> None:
    """``print(i, flush=True)`` ``n`` times: the kernel is the bottleneck, so messages reach the
    server one by one (the realistic case, not a burst read in batches). Server CPU per message
    with 1, 2 and 4 clients of the kernel (the plan's ``obo_clients``; further clients read
    everything), rounds alternating between lanes; medians per client count, and the cost of
    each further client as the slope over them."""
    code = PRINTS_CODE.format(n=n)
    cpu: dict[int, dict[int, list[float]]] = {id(lane): {} for lane in lanes}
    rates: dict[int, list[float]] = {id(lane): [] for lane in lanes}
    lost: dict[int, int] = {id(lane): 0 for lane in lanes}
    failed: dict[int, str] = {}
    for _ in range(reps):
        for lane in lanes:
            if lane.failed or id(lane) in failed:
                continue
            counts = lane.target.plan.obo_clients if lane.target.server else (1,)
            try:
                for clients in counts:
                    per, rate, missed = await _obo_run(lane, code, n, clients)
                    lost[id(lane)] += missed
                    if clients == 1:
                        rates[id(lane)].append(rate)
                    if per is not None:
                        cpu[id(lane)].setdefault(clients, []).append(per)
            except Exception as exc:  # noqa: BLE001
                failed[id(lane)] = f"{type(exc).__name__}: {str(exc)[:100]}"
    for lane in lanes:
        key = f"obo_{lane.proto}"
        if lane.failed:
            continue
        if id(lane) in failed:
            out[lane.label][key] = Result.failed("msg/s", failed[id(lane)])
            continue
        medians = {clients: median(values) for clients, values in cpu[id(lane)].items()}
        out[lane.label][key] = Result(median(rates[id(lane)]), "msg/s", medians.get(1))
        for clients, value in medians.items():
            if clients > 1:
                out[lane.label][f"obo{clients}_{lane.proto}"] = Result(value, "us")
        if len(medians) > 1:
            out[lane.label][f"obo_extra_{lane.proto}"] = Result(_slope(medians), "us")
        out[lane.label][f"obo_lost_{lane.proto}"] = Result(lost[id(lane)], "messages")


async def run_kernel_suite(targets: dict[str, Target], relay_only: bool = False) -> dict[str, dict[str, Result]]:
    """Every kernel benchmark on every target (round-robin), or only the one-by-one relay rows;
    failures are reported, not raised."""
    out: dict[str, dict[str, Result]] = {label: {} for label in targets}
    if not targets:
        return out
    plan = next(iter(targets.values())).plan
    if not relay_only:
        await _starts(targets, out)
    lanes = await _open_lanes(targets, out)
    try:
        if not relay_only:
            await _round_trips(lanes, plan.round_trips, out)
            await _prints(lanes, plan.print_mb, plan.print_reps, out)
            await _floods(lanes, plan.flood, out)
        await _one_by_one(lanes, plan.prints, plan.print_reps, out)
    finally:
        for lane in lanes:
            await lane.client.close()
            await _stop(lane.target, lane.kernel)
    return out
