"""REST benchmarks of issue 2 (directory listing, big notebook GET/PUT, many small-file readers),
run round-robin over the servers so that each sees the same machine noise."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson

from httpclient import Connection, expect
from procstat import cpu_seconds
from results import Result, median
from servers import ServerProc

NOTEBOOK = "/api/contents/big.ipynb?content=1&type=notebook"
LISTING = "/api/contents/many?content=1"
SMALL = "/api/contents/small.txt?type=file&format=text&content=1"


@dataclass(frozen=True)
class RestPlan:
    """How much work each REST benchmark does."""

    reps: int = 5
    clients: int = 50
    small_requests: int = 5000
    listing_files: int = 5000


def _failure(unit: str, exc: BaseException) -> Result:
    return Result.failed(unit, f"{type(exc).__name__}: {str(exc)[:120]}")


async def _round_robin(servers: dict[str, ServerProc], reps: int, key: str, unit: str,
                       op: Callable[[str, Connection], Awaitable[object]],
                       out: dict[str, dict[str, Result]]) -> None:
    """Time ``op`` ``reps`` times per server, alternating servers; median wall, mean server CPU."""
    conns = {label: await Connection(s.url, s.headers).open() for label, s in servers.items()}
    walls: dict[str, list[float]] = {label: [] for label in servers}
    cpu: dict[str, float] = {label: 0.0 for label in servers}
    live = {}
    for label in servers:  # warm-up, and the check that the server does it at all
        try:
            await op(label, conns[label])
            live[label] = servers[label]
        except Exception as exc:  # noqa: BLE001 - one broken server must not stop the others
            out[label][key] = _failure(unit, exc)
    for _ in range(reps):
        for label, server in list(live.items()):
            c0, t0 = cpu_seconds(server.pid), time.perf_counter()
            try:
                await op(label, conns[label])
            except Exception as exc:  # noqa: BLE001
                out[label][key] = _failure(unit, exc)
                del live[label]
                continue
            walls[label].append(time.perf_counter() - t0)
            cpu[label] += cpu_seconds(server.pid) - c0
    for label in live:
        out[label][key] = Result(median(walls[label]) * 1000, "ms", cpu[label] / reps * 1e6)
    for conn in conns.values():
        await conn.close()


async def _small_file_readers(servers: dict[str, ServerProc], plan: RestPlan,
                              out: dict[str, dict[str, Result]]) -> None:
    """``clients`` keep-alive connections per server reading one small file; bursts alternate."""
    blocks = 5
    per_block = max(plan.clients, plan.small_requests // blocks)
    conns = {label: [await Connection(s.url, s.headers).open() for _ in range(plan.clients)]
             for label, s in servers.items()}
    live: dict[str, ServerProc] = {}
    for label in servers:
        try:
            for conn in conns[label]:
                await expect(conn, "GET", SMALL)
            live[label] = servers[label]
        except Exception as exc:  # noqa: BLE001
            out[label]["small_rps"] = _failure("req/s", exc)
    wall = {label: 0.0 for label in live}
    cpu = {label: 0.0 for label in live}
    for _ in range(blocks):
        for label, server in list(live.items()):
            remaining = per_block

            async def worker(conn: Connection) -> None:
                nonlocal remaining
                while remaining > 0:
                    remaining -= 1
                    await expect(conn, "GET", SMALL)

            c0, t0 = cpu_seconds(server.pid), time.perf_counter()
            try:
                await asyncio.gather(*(worker(conn) for conn in conns[label]))
            except Exception as exc:  # noqa: BLE001
                out[label]["small_rps"] = _failure("req/s", exc)
                del live[label]
                continue
            wall[label] += time.perf_counter() - t0
            cpu[label] += cpu_seconds(server.pid) - c0
    total = per_block * blocks
    for label in live:
        out[label]["small_rps"] = Result(total / wall[label], "req/s", cpu[label] / total * 1e6)
    for group in conns.values():
        for conn in group:
            await conn.close()


async def run_rest(servers: dict[str, ServerProc], plan: RestPlan) -> dict[str, dict[str, Result]]:
    """Every REST benchmark on every server; a failing one is reported, not raised."""
    out: dict[str, dict[str, Result]] = {label: {} for label in servers}
    bodies: dict[str, bytes] = {}

    async def listing(label: str, conn: Connection) -> None:
        model = orjson.loads(await expect(conn, "GET", LISTING))
        if len(model.get("content") or []) != plan.listing_files:
            raise ValueError(f"listing has {len(model.get('content') or [])} entries, not {plan.listing_files}")

    async def get_notebook(label: str, conn: Connection) -> None:
        model = orjson.loads(await expect(conn, "GET", NOTEBOOK))
        if not model.get("content", {}).get("cells"):
            raise ValueError("the notebook model has no cells")
        if label not in bodies:
            bodies[label] = orjson.dumps({"type": "notebook", "format": "json", "content": model["content"]})

    async def put_notebook(label: str, conn: Connection) -> None:
        if label not in bodies:
            raise ValueError("no notebook to save: GET failed")
        await expect(conn, "PUT", "/api/contents/bench_put.ipynb", (200, 201), bodies[label])

    await _round_robin(servers, plan.reps, "listing", "ms", listing, out)
    await _round_robin(servers, plan.reps, "nb_get", "ms", get_notebook, out)
    await _round_robin(servers, plan.reps, "nb_put", "ms", put_notebook, out)
    await _small_file_readers(servers, plan, out)
    return out
