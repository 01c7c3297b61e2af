"""REST benchmarks of issue 2: directory listing, big notebook GET/PUT, many small-file readers."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import orjson

from httpclient import Connection, HttpError, expect
from procstat import CpuMeter
from results import Result, median
from servers import ServerProc


@dataclass(frozen=True)
class RestPlan:
    """How much work each REST benchmark does."""

    reps: int = 5
    clients: int = 50
    small_requests: int = 5000
    listing_files: int = 5000


async def _timed(server: ServerProc, conn: Connection, method: str, path: str, reps: int,
                 body: bytes = b"", statuses: tuple[int, ...] = (200,)) -> Result:
    await expect(conn, method, path, statuses, body)  # warm-up
    walls = []
    with CpuMeter(server.pid) as cpu:
        for _ in range(reps):
            t0 = time.perf_counter()
            await expect(conn, method, path, statuses, body)
            walls.append(time.perf_counter() - t0)
    return Result(median(walls) * 1000, "ms", cpu.seconds / reps * 1e6)


async def listing(server: ServerProc, plan: RestPlan) -> Result:
    conn = await Connection(server.url, server.headers).open()
    try:
        model = orjson.loads(await expect(conn, "GET", "/api/contents/many?content=1"))
        if len(model.get("content") or []) != plan.listing_files:
            return Result.failed("ms", f"listing has {len(model.get('content') or [])} entries")
        return await _timed(server, conn, "GET", "/api/contents/many?content=1", plan.reps)
    finally:
        await conn.close()


async def notebook_get_put(server: ServerProc, plan: RestPlan) -> tuple[Result, Result]:
    conn = await Connection(server.url, server.headers).open()
    try:
        path = "/api/contents/big.ipynb?content=1&type=notebook"
        model = orjson.loads(await expect(conn, "GET", path))
        if model.get("type") != "notebook" or not model.get("content", {}).get("cells"):
            return Result.failed("ms", "no notebook content"), Result.failed("ms", "no notebook content")
        got = await _timed(server, conn, "GET", path, plan.reps)
        body = orjson.dumps({"type": "notebook", "format": "json", "content": model["content"]})
        put = await _timed(server, conn, "PUT", "/api/contents/bench_put.ipynb", plan.reps, body, (200, 201))
        put.note = f"{len(body) / 1e6:.1f} MB body"
        got.note = f"{len(body) / 1e6:.1f} MB notebook"
        return got, put
    finally:
        await conn.close()


async def small_file_readers(server: ServerProc, plan: RestPlan) -> Result:
    """``clients`` keep-alive connections reading one small file until ``small_requests`` are done."""
    path = "/api/contents/small.txt?type=file&format=text&content=1"
    conns = [await Connection(server.url, server.headers).open() for _ in range(plan.clients)]
    try:
        for conn in conns:
            await expect(conn, "GET", path)
        remaining = plan.small_requests

        async def worker(conn: Connection) -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await expect(conn, "GET", path)

        with CpuMeter(server.pid) as cpu:
            t0 = time.perf_counter()
            await asyncio.gather(*(worker(conn) for conn in conns))
            wall = time.perf_counter() - t0
        return Result(plan.small_requests / wall, "req/s", cpu.seconds / plan.small_requests * 1e6)
    finally:
        for conn in conns:
            await conn.close()


async def run_rest(server: ServerProc, plan: RestPlan) -> dict[str, Result]:
    """Every REST benchmark against one server; a failing one is reported, not raised."""
    out: dict[str, Result] = {}
    try:
        out["listing"] = await listing(server, plan)
    except (HttpError, OSError, asyncio.IncompleteReadError) as exc:
        out["listing"] = Result.failed("ms", str(exc)[:120])
    try:
        out["nb_get"], out["nb_put"] = await notebook_get_put(server, plan)
    except (HttpError, OSError, asyncio.IncompleteReadError) as exc:
        out["nb_get"] = out["nb_put"] = Result.failed("ms", str(exc)[:120])
    try:
        out["small_rps"] = await small_file_readers(server, plan)
    except (HttpError, OSError, asyncio.IncompleteReadError) as exc:
        out["small_rps"] = Result.failed("req/s", str(exc)[:120])
    return out
