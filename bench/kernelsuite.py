"""The kernel benchmarks run over all targets at once, round-robin, so every target sees the same
machine noise: start reps alternate between targets, round trips run in alternating blocks."""

from __future__ import annotations

import asyncio
import logging
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


async def _drain(client: KernelClient, counts: list[int]) -> None:
    """Read everything a second client of the kernel receives, counting stream messages."""
    while True:
        msg = await client.recv()
        if msg.msg_type == "stream":
            counts[0] += 1


async def _prints_cpu(lane: Lane, code: str) -> tuple[int, float | None, float]:
    """Run ``code`` on the lane's kernel: stream messages received, server CPU per message, wall."""
    meter = Meter(lane.target)
    with meter:
        outputs, wall = await execute(lane.client, code, timeout=300)
    got = sum(1 for m in outputs if m.msg_type == "stream")
    return got, meter.per(got), wall


async def _one_by_one(lanes: list[Lane], n: int, reps: int, out: dict[str, dict[str, Result]]) -> None:
    """``print(i, flush=True)`` ``n`` times: the kernel is the bottleneck, so messages reach the
    server one by one (the realistic case, not a burst read in batches). Server CPU per message
    with one client, and with a second client on the same kernel reading everything, alternating
    ``reps`` times (medians; the difference is the cost of each further client)."""
    code = PRINTS_CODE.format(n=n)
    for lane in lanes:
        if lane.failed:
            continue
        one: list[float] = []
        two: list[float] = []
        rates: list[float] = []
        try:
            for _ in range(reps):
                got, cpu, wall = await _prints_cpu(lane, code)
                rates.append(got / wall)
                if cpu is not None:
                    one.append(cpu)
                if not lane.target.server:
                    continue
                extra = await lane.target.connect(lane.kernel, lane.proto)
                counts = [0]
                drain = asyncio.ensure_future(_drain(extra, counts))
                try:
                    await execute(lane.client, "pass")
                    counts[0] = 0
                    meter = Meter(lane.target)
                    with meter:
                        outputs, _ = await execute(lane.client, code, timeout=300)
                        got = sum(1 for m in outputs if m.msg_type == "stream")
                        async with asyncio.timeout(120):
                            while counts[0] < got:  # the second client has them all too
                                await asyncio.sleep(0.05)
                    cpu = meter.per(got)
                    if cpu is not None:
                        two.append(cpu)
                finally:
                    drain.cancel()
                    await extra.close()
        except Exception as exc:  # noqa: BLE001
            out[lane.label][f"obo_{lane.proto}"] = _failed("msg/s", exc)
            continue
        out[lane.label][f"obo_{lane.proto}"] = Result(median(rates), "msg/s", median(one) if one else None)
        if one and two:
            out[lane.label][f"obo_extra_{lane.proto}"] = Result(median(two) - median(one), "us")


async def run_kernel_suite(targets: dict[str, Target]) -> dict[str, dict[str, Result]]:
    """Every kernel benchmark on every target (round-robin); failures are reported, not raised."""
    out: dict[str, dict[str, Result]] = {label: {} for label in targets}
    if not targets:
        return out
    plan = next(iter(targets.values())).plan
    await _starts(targets, out)
    lanes = await _open_lanes(targets, out)
    try:
        await _round_trips(lanes, plan.round_trips, out)
        await _prints(lanes, plan.print_mb, plan.print_reps, out)
        await _floods(lanes, plan.flood, out)
        await _one_by_one(lanes, plan.prints, plan.print_reps, out)
    finally:
        for lane in lanes:
            await lane.client.close()
            await _stop(lane.target, lane.kernel)
    return out
