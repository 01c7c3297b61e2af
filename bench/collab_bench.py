"""Benchmark of the collab extension side by side with jupyter-collaboration.

carme (``carme serve`` with only collab) and jupyter_server 2.21 with jupyter-collaboration 5.0.4
(jupyter-server-ydoc, jupyter_server_fileid; installed into ``bench/.anchor-collab-venv`` with uv
on first use) serve copies of the same folder; the same Python clients (pycrdt Providers over
websockets, jupyter_ydoc YNotebooks) measure both, alternating round by round:

- update latency between two clients (one inserts a character, the other sees it), p50 / p99;
- server CPU per update with 10 clients typing into one cell (server utime+stime / updates);
- memory per open room (RSS growth over ``--rooms`` notebooks of ~200 KB, one client each);
- join time of a ~20 MB notebook (session PUT to synced, room not loaded yet);
- save time of that notebook (one edit, then RAW save until the reply).

    python bench/collab_bench.py [--quick] [--rounds 3] [--only join] [--out bench/results/collab.md]

``--only`` runs some of the measures (``latency``, ``cpu``, ``memory``, ``join``: the join and
save of the big notebook); the table then has only their rows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import websockets
from jupyter_ydoc import YNotebook
from pycrdt import Provider, Text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixtures import _notebook, make_jupyter_home  # noqa: E402
from procstat import cpu_seconds, rss_bytes  # noqa: E402
from results import percentile  # noqa: E402
from servers import HERE, TOKEN, ServerProc, ensure_anchor, free_port, launch  # noqa: E402

from carme.plugins import installed_extensions  # noqa: E402

ANCHOR_VENV = HERE / ".anchor-collab-venv"
ANCHOR_REQUIREMENTS = ["jupyter_server>=2.21,<2.22", "jupyter-collaboration==5.0.4"]
HEADERS = {"Authorization": f"token {TOKEN}"}
RAW = 2
MEASURES = ("latency", "cpu", "memory", "join")


class Channel:
    """pycrdt's Channel over a websockets connection; RAW replies go to ``raw``."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.raw: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    @property
    def path(self) -> str:
        return "bench"

    def __aiter__(self) -> Channel:
        return self

    async def __anext__(self) -> bytes:
        while True:
            try:
                message = await self.ws.recv()
            except websockets.ConnectionClosed:
                raise StopAsyncIteration from None
            if isinstance(message, bytes) and message[:1] == bytes([RAW]):
                length, pos = message[1], 2  # short JSON replies: one-byte length
                self.raw.put_nowait(json.loads(message[pos:pos + length]))
                continue
            if isinstance(message, bytes):
                return message

    async def send(self, message: bytes) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await self.ws.send(message)


@contextlib.asynccontextmanager
async def client(server: ServerProc, path: str,
                 http: httpx.AsyncClient | None = None) -> AsyncIterator[tuple[YNotebook, Channel]]:
    """A synced YNotebook of ``path`` on ``server`` (the session asked with ``http`` if given)."""
    async with contextlib.AsyncExitStack() as stack:
        if http is None:
            http = await stack.enter_async_context(httpx.AsyncClient(headers=HEADERS, timeout=300))
        session = (await http.put(f"{server.url}/api/collaboration/session/{path}",
                                  json={"format": "json", "type": "notebook"})).json()
    room = f"{session['format']}:{session['type']}:{session['fileId']}"
    url = f"{server.ws_url}/api/collaboration/room/{room}?sessionId={session['sessionId']}&token={TOKEN}"
    doc = YNotebook()
    async with websockets.connect(url, max_size=None, proxy=None, compression=None) as ws:
        channel = Channel(ws)
        async with Provider(doc.ydoc, channel) as provider:
            await asyncio.wait_for(provider.synced.wait(), 600)
            yield doc, channel


async def wait_for(condition: Any, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("benchmark condition not reached")
        await asyncio.sleep(0.001)


def text_of(doc: YNotebook) -> Text:
    return doc.ycells[0]["source"]


async def latency(server: ServerProc, edits: int) -> list[float]:
    """Seconds from an insert at one client to the other client's document having it."""
    async with client(server, "latency.ipynb") as (one, _), client(server, "latency.ipynb") as (two, _):
        source, seen = text_of(one), text_of(two)
        arrived = asyncio.Event()
        two.ydoc.observe(lambda _event: arrived.set())
        times = []
        for _ in range(edits):
            arrived.clear()
            expected = len(seen) + 1
            start = time.perf_counter()
            source.insert(0, "x")
            while len(seen) != expected:
                await arrived.wait()
                arrived.clear()
            times.append(time.perf_counter() - start)
        return times


async def typing_cpu(server: ServerProc, clients: int, per_client: int) -> float:
    """Server CPU seconds per update while ``clients`` clients each type ``per_client`` characters."""
    async with contextlib.AsyncExitStack() as stack:
        docs = [(await stack.enter_async_context(client(server, "typing.ipynb")))[0] for _ in range(clients)]
        base = len(text_of(docs[0]))
        total = base + clients * per_client

        async def typist(doc: YNotebook) -> None:
            source = text_of(doc)
            for _ in range(per_client):
                source.insert(0, "k")
                await asyncio.sleep(0.01)

        cpu0 = cpu_seconds(server.pid)
        await asyncio.gather(*(typist(doc) for doc in docs))
        await wait_for(lambda: all(len(text_of(doc)) == total for doc in docs))
        return (cpu_seconds(server.pid) - cpu0) / (clients * per_client)


async def room_memory(server: ServerProc, rooms: int) -> float:
    """RSS growth in bytes per open room (each with one client)."""
    before = rss_bytes(server.pid)
    async with contextlib.AsyncExitStack() as stack:
        for i in range(rooms):
            await stack.enter_async_context(client(server, f"room-{i}.ipynb"))
        await asyncio.sleep(1)  # let the servers finish their post-join work (stores, saves)
        return (rss_bytes(server.pid) - before) / rooms


async def big_join_and_save(server: ServerProc, name: str) -> tuple[float, float, str]:
    """(join seconds, save seconds, save status) of the big notebook, room cold: from the session
    request to the client's document holding the notebook. The HTTP client is made before the
    clock starts (its TLS set-up is the benchmark's cost, not the server's)."""
    async with httpx.AsyncClient(headers=HEADERS, timeout=300) as http:
        return await _big_join_and_save(server, name, http)


async def _big_join_and_save(server: ServerProc, name: str, http: httpx.AsyncClient) -> tuple[float, float, str]:
    start = time.perf_counter()
    async with client(server, name, http) as (doc, channel):
        joined = time.perf_counter() - start
        text_of(doc).insert(0, "# edited\n")
        await asyncio.sleep(0.05)
        start = time.perf_counter()
        await channel.send(bytes([RAW, 4]) + b"save" + bytes([7]))
        reply = await asyncio.wait_for(channel.raw.get(), 600)
        return joined, time.perf_counter() - start, str(reply.get("status"))


def make_root(root: Path, big_mb: float, rooms: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    small = json.dumps(_notebook(200_000))
    for name in ("latency.ipynb", "typing.ipynb", *(f"room-{i}.ipynb" for i in range(rooms))):
        (root / name).write_text(small)
    big = json.dumps(_notebook(int(big_mb * 1_000_000)), indent=1)
    for i in range(8):
        (root / f"big-{i}.ipynb").write_text(big)


def start_servers(work: Path, quick: bool) -> dict[str, ServerProc]:
    servers = {}
    for label in ("carme", "jupyter-collaboration"):
        root = work / label / "root"
        env = make_jupyter_home(work / label / "home")
        if label == "carme":
            command = [str(Path(sys.executable).parent / "carme"), "--log-level", "WARNING", "serve", str(root),
                       "--token", TOKEN, "--no-browser", "--set", "collab.save_delay=1.0"]
            for name in installed_extensions():
                command += ["--enable" if name == "collab" else "--disable", name]
        else:
            python = ensure_anchor(ANCHOR_VENV, ANCHOR_REQUIREMENTS)
            command = [str(python), "-m", "jupyter_server", "--no-browser", "--ServerApp.ip=127.0.0.1",
                       "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}",
                       f"--ServerApp.root_dir={root}", "--log-level=WARN", "--allow-root"]
        port = free_port()
        command += ["--port", str(port)] if label == "carme" else [f"--ServerApp.port={port}"]
        servers[label] = launch(label, command, port, env, work / "logs", root, timeout=120)
    return servers


async def measure(servers: dict[str, ServerProc], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {label: {"lat": [], "cpu": [], "mem": [], "join": [], "save": []}
                                          for label in servers}
    for round_no in range(args.rounds):
        for label, server in (servers.items() if round_no % 2 == 0 else reversed(servers.items())):
            r = results[label]
            if "latency" in args.only:
                r["lat"] += await latency(server, args.edits)
            if "cpu" in args.only:
                r["cpu"].append(await typing_cpu(server, 10, args.per_client))
            if "memory" in args.only and round_no == 0:
                r["mem"].append(await room_memory(server, args.rooms))
            if "join" in args.only:
                join, save, status = await big_join_and_save(server, f"big-{round_no}.ipynb")
                r["join"].append(join)
                r["save"].append((save, status))
    return results


def table(results: dict[str, dict[str, Any]], big_mb: float, header: str) -> str:
    carme, anchor = results["carme"], results["jupyter-collaboration"]

    def med(values: list[float]) -> float | None:
        return sorted(values)[len(values) // 2] if values else None

    def pct(values: list[float], p: float) -> float | None:
        return percentile(values, p) * 1e3 if values else None

    def scaled(value: float | None, factor: float) -> float | None:
        return None if value is None else value * factor

    rows = [
        ("update latency between two clients p50 (ms)", pct(carme["lat"], 50), pct(anchor["lat"], 50), "<= 0.5x"),
        ("update latency between two clients p99 (ms)", pct(carme["lat"], 99), pct(anchor["lat"], 99), "<= 0.5x"),
        ("server CPU per update, 10 clients typing (us)", scaled(med(carme["cpu"]), 1e6),
         scaled(med(anchor["cpu"]), 1e6), "<= 0.5x"),
        ("memory per open room, ~200 KB notebook (MB)", scaled(med(carme["mem"]), 1e-6),
         scaled(med(anchor["mem"]), 1e-6), ""),
        (f"join a {big_mb:g} MB notebook, cold room (s)", med(carme["join"]), med(anchor["join"]), "<= 0.5x"),
        (f"save a {big_mb:g} MB notebook after an edit (s)", med([s for s, _ in carme["save"]]),
         med([s for s, _ in anchor["save"]]), ""),
    ]
    rows = [row for row in rows if row[1] is not None and row[2] is not None]
    lines = [header, "", "| benchmark | carme | jupyter-collaboration | ratio | target | met? |",
             "|---|---:|---:|---:|---|:---:|"]
    for name, ours, theirs, target in rows:
        ratio = ours / theirs if theirs else float("nan")
        met = "" if not target else ("yes" if ratio <= 0.5 else "**no**")
        lines.append(f"| {name} | {ours:,.3g} | {theirs:,.3g} | {ratio:.2f}x | {target} | {met} |")
    if carme["join"]:
        statuses = {label: sorted({s for _, s in r["save"]}) for label, r in results.items()}
        joins = {label: [round(t, 3) for t in r["join"]] for label, r in results.items()}
        lines += ["", f"save replies: {statuses}", f"join times, round by round (s): {joins}"]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: ``--only`` becomes the set of measures to run (all by default)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, one round (a smoke run)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "collab.md")
    parser.add_argument("--only", action="append", choices=MEASURES,
                        help="run only this measure (repeatable; default: all)")
    args = parser.parse_args(argv)
    args.only = set(args.only or MEASURES)
    return args


def main() -> None:
    args = parse_args()
    big_mb = 1.0 if args.quick else 20.0
    args.rounds = 1 if args.quick else min(args.rounds, 8)
    args.edits = 20 if args.quick else 300
    args.per_client = 10 if args.quick else 100
    args.rooms = 3 if args.quick else 30
    work = Path(tempfile.mkdtemp(prefix="carme-collab-bench-"))
    try:
        for label in ("carme", "jupyter-collaboration"):
            make_root(work / label / "root", big_mb, args.rooms)
        servers = start_servers(work, args.quick)
        try:
            results = asyncio.run(measure(servers, args))
        finally:
            for server in servers.values():
                server.stop()
        import os

        only = "" if args.only == set(MEASURES) else f", only {', '.join(sorted(args.only))}"
        header = (f"collab benchmark, {time.strftime('%Y-%m-%d')}, Python {sys.version.split()[0]}, "
                  f"load average {os.getloadavg()[0]:.1f}, {args.rounds} round(s){only}")
        text = table(results, big_mb, header)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(text)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
