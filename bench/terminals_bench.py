"""Benchmark of the terminals extension side by side with jupyter_server_terminals.

carme (``carme serve`` with only terminals) and jupyter_server 2.21 with jupyter_server_terminals
(terminado; installed into ``bench/.anchor-terminals-venv`` with uv on first use) both run the
same shell (bash without rc files). The same websocket client (the websockets library, offering
permessage-deflate as browsers do) measures both, alternating round by round:

- keystroke echo round trip: one character typed into ``cat`` (echoed by the pty's line
  discipline, so no program's speed is measured), until it comes back as ``stdout``; p50 / p99;
- output throughput of a flooding terminal: ``base64`` of random bytes (it compresses about as
  real output does) read by a client as fast as it can, in MB of terminal text per second; and
  ``cat`` of the same text already encoded (base64 writes a tty a line at a time, 100 bytes a
  write, so it, not the server, sets the pace; ``cat`` writes big blocks and leaves the pace to
  the reader);
- server CPU per MB of that output (server process utime+stime from /proc; the shell and the
  programs are other processes and not counted), and the bench client's own CPU per MB.

Two references show what no server could beat on this machine: the *floor*, the least server on
uvicorn (bench/terminals_floor.py: pty to websocket and back, one message per read, nothing
else) measured with the same client, and the *ceiling* of a flood, the same command on a pty read
by a bare Python loop reading as carme does, with no server, websocket or client at all.

    python bench/terminals_bench.py [--quick] [--rounds 3] [--no-anchor] [--out bench/results/terminals.md]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixtures import make_jupyter_home  # noqa: E402
from procstat import cpu_seconds  # noqa: E402
from results import percentile  # noqa: E402
from servers import HERE, TOKEN, ServerProc, ensure_anchor, free_port, launch  # noqa: E402

from carme.plugins import installed_extensions  # noqa: E402
from carme_terminals.terminal import READ_SIZE  # noqa: E402

ANCHOR = "jupyter_server_terminals"
ANCHOR_VENV = HERE / ".anchor-terminals-venv"
ANCHOR_REQUIREMENTS = ["jupyter_server>=2.21,<2.22", "jupyter_server_terminals==0.5.4", "terminado==0.18.1"]
HEADERS = {"Authorization": f"token {TOKEN}"}
SHELL = [shutil.which("bash") or "/bin/bash", "--norc", "--noprofile"]
FLOOR = "floor"
FLOOR_SCRIPT = Path(__file__).with_name("terminals_floor.py")
FLOODS = {"base64": "base64 -w 100 {raw}", "cat": "cat {raw}.b64"}


class Term:
    """A websocket on one terminal; ``output`` counts the stdout characters received."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.received = 0
        self.tail = ""

    async def recv(self) -> None:
        message = json.loads(await self.ws.recv())
        if message[0] == "stdout":
            self.received += len(message[1])
            self.tail = (self.tail + message[1])[-256:]

    async def until(self, text: str, timeout: float = 120) -> None:
        async with asyncio.timeout(timeout):
            while text not in self.tail:
                await self.recv()

    async def type(self, text: str) -> None:
        await self.ws.send(json.dumps(["stdin", text]))


async def open_terminal(server: ServerProc) -> tuple[str, Term, Any]:
    async with httpx.AsyncClient(headers=HEADERS, timeout=60) as client:
        name = (await client.post(server.url + "/api/terminals")).json()["name"]
    ws = await connect(f"{server.ws_url}/terminals/websocket/{name}", additional_headers=HEADERS, max_size=None,
                       proxy=None)
    term = Term(ws)
    while True:  # setup first
        if json.loads(await ws.recv())[0] == "setup":
            break
    return name, term, ws


async def close_terminal(server: ServerProc, name: str, ws: Any) -> None:
    await ws.close()
    async with httpx.AsyncClient(headers=HEADERS, timeout=60) as client:
        await client.delete(f"{server.url}/api/terminals/{name}")


async def echo(server: ServerProc, keys: int) -> list[float]:
    name, term, ws = await open_terminal(server)
    try:
        await term.type("exec cat\r")
        await term.until("exec cat\r\n")
        await asyncio.sleep(0.3)  # let the shell become cat
        out = []
        for i in range(keys):
            key = "abcdefghij"[i % 10]
            term.tail = ""
            start = time.perf_counter()
            await term.type(key)
            await term.until(key)
            out.append(time.perf_counter() - start)
            if i % 200 == 199:  # keep the line under the pty's 4096-character line limit
                await term.type("\r")
                await term.until("\r\n")
        return out
    finally:
        await close_terminal(server, name, ws)


def flood_file(megabytes: float) -> Path:
    """Random bytes that make ``megabytes`` MB of base64 text, and that text (``.b64``) beside them."""
    raw = Path(f"/tmp/carme-bench-{os.getpid()}")
    if not raw.exists():
        raw.write_bytes(os.urandom(int(megabytes * 1e6 * 3 / 4)))  # base64 makes 4 characters of 3 bytes
        with Path(f"{raw}.b64").open("wb") as out:
            subprocess.run(["base64", "-w", "100", str(raw)], stdout=out, check=True)
    return raw


async def flood(server: ServerProc, megabytes: float, kind: str) -> tuple[float, float, float, float]:
    """(MB of text received, seconds, server CPU seconds, client CPU seconds) for one flood."""
    name, term, ws = await open_terminal(server)
    try:
        command = FLOODS[kind].format(raw=flood_file(megabytes))
        term.received = 0
        cpu, client_cpu = cpu_seconds(server.pid), time.process_time()
        start = time.perf_counter()
        await term.type(f"{command}; echo END-$((1+1))\r")
        await term.until("END-2", timeout=600)
        seconds = time.perf_counter() - start
        return term.received / 1e6, seconds, cpu_seconds(server.pid) - cpu, time.process_time() - client_cpu
    finally:
        await close_terminal(server, name, ws)


def bare_reader(megabytes: float, kind: str) -> float:
    """MB/s of the same flood on a pty read by a bare loop (no server, websocket or client) that
    reads as carme's terminals do (carme_terminals.terminal: one read per wake-up)."""
    controller, follower = os.openpty()
    os.set_blocking(controller, False)
    command = FLOODS[kind].format(raw=flood_file(megabytes))
    start = time.perf_counter()
    proc = subprocess.Popen([*SHELL, "-c", command], stdin=follower, stdout=follower, stderr=follower,
                            start_new_session=True)
    os.close(follower)
    received, eof = 0, False
    poll = select.epoll()
    poll.register(controller, select.EPOLLIN)
    try:
        while not eof:
            poll.poll()
            try:
                data = os.read(controller, READ_SIZE)
            except BlockingIOError:
                continue
            except OSError:  # EIO: the program exited and its output is read
                data = b""
            eof = not data
            received += len(data)
    finally:
        poll.close()
        os.close(controller)
        proc.wait()
    return received / 1e6 / (time.perf_counter() - start)


def start_servers(work: Path, anchor: bool = True) -> dict[str, ServerProc]:
    servers = {}
    for label in ("carme", ANCHOR, FLOOR) if anchor else ("carme", FLOOR):
        root = work / label / "root"
        root.mkdir(parents=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CARME_", "JUPYTER"))}
        env.update(make_jupyter_home(work / label / "home"))
        port = free_port()
        if label == FLOOR:
            command = [sys.executable, FLOOR_SCRIPT, str(port), *SHELL]
        elif label == "carme":
            command = [str(Path(sys.executable).parent / "carme"), "--log-level", "WARNING", "serve", str(root),
                       "--token", TOKEN, "--no-browser", "--port", str(port),
                       "--set", f"terminals.shell={json.dumps(SHELL)}"]
            for name in installed_extensions():
                command += ["--enable" if name == "terminals" else "--disable", name]
        else:
            python = ensure_anchor(ANCHOR_VENV, ANCHOR_REQUIREMENTS)
            (Path(env["JUPYTER_CONFIG_DIR"]) / "jupyter_server_config.json").write_text(json.dumps(
                {"ServerApp": {"terminado_settings": {"shell_command": SHELL}}}))
            command = [str(python), "-m", "jupyter_server", "--no-browser", "--ServerApp.ip=127.0.0.1",
                       "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}",
                       f"--ServerApp.root_dir={root}", "--log-level=WARN", "--allow-root",
                       f"--ServerApp.port={port}"]
        servers[label] = launch(label, command, port, env, work / "logs", root, timeout=120)
    return servers


async def measure(servers: dict[str, ServerProc], args: argparse.Namespace) -> dict[str, dict[str, list[Any]]]:
    results: dict[str, dict[str, list[Any]]] = {label: {"echo": [], **{kind: [] for kind in FLOODS}}
                                                for label in servers}
    results["bare"] = {kind: [] for kind in FLOODS}
    for round_no in range(args.rounds):
        for label, server in (servers.items() if round_no % 2 == 0 else reversed(servers.items())):
            results[label]["echo"] += await echo(server, args.keys)
            for kind in FLOODS:
                results[label][kind].append(await flood(server, args.megabytes, kind))
        for kind in FLOODS:
            results["bare"][kind].append(bare_reader(args.megabytes, kind))
    return results


def table(results: dict[str, dict[str, list[Any]]], megabytes: float, header: str) -> str:
    carme, floor, bare = results["carme"], results[FLOOR], results["bare"]
    anchor = results.get(ANCHOR) or {"echo": [], **{kind: [] for kind in FLOODS}}  # --no-anchor: n/a

    def middle(values: list[float]) -> float:
        return sorted(values)[len(values) // 2] if values else float("nan")

    def rate(r: dict[str, list[Any]], kind: str) -> float:
        return middle([mb / s for mb, s, *_ in r[kind]])

    def cpu_per_mb(r: dict[str, list[Any]], kind: str, which: int = 2) -> float:
        return middle([run[which] / run[0] for run in r[kind]]) * 1e3

    def echo(r: dict[str, list[Any]], q: int) -> float:
        return percentile(r["echo"], q) * 1e3 if r["echo"] else float("nan")

    rows: list[tuple[str, float, float, str, Any, float, float | None]] = [
        (f"keystroke echo round trip p{q} (ms)", echo(carme, q), echo(anchor, q), "<= 0.5x",
         lambda r: r <= 0.5, echo(floor, q), None) for q in (50, 99)]
    for kind in FLOODS:
        rows += [
            (f"flood throughput, {megabytes:g} MB by `{kind}` (MB/s)", rate(carme, kind), rate(anchor, kind), ">= 2x",
             lambda r: r >= 2, rate(floor, kind), middle(bare[kind])),
            (f"server CPU per MB of output, `{kind}` (ms)", cpu_per_mb(carme, kind), cpu_per_mb(anchor, kind),
             "<= 0.5x", lambda r: r <= 0.5, cpu_per_mb(floor, kind), None),
            (f"bench client CPU per MB, `{kind}` (ms)", cpu_per_mb(carme, kind, 3), cpu_per_mb(anchor, kind, 3),
             "", None, cpu_per_mb(floor, kind, 3), None),
        ]
    lines = [header, "",
             f"| benchmark | carme | {ANCHOR} | ratio | target | met? | floor: uvicorn + pty only | "
             "ceiling: bare pty reader |",
             "|---|---:|---:|---:|---|:---:|---:|---:|"]
    for name, ours, theirs, target, met, least, bare_rate in rows:
        ratio = ours / theirs if theirs else float("nan")
        verdict = "" if met is None or math.isnan(ratio) else "yes" if met(ratio) else "**no**"
        lines.append(f"| {name} | {ours:,.3g} | {theirs:,.3g} | {ratio:.2f}x | {target} | {verdict} | {least:,.3g} | "
                     f"{'' if bare_rate is None else f'{bare_rate:,.3g}'} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, one round (a smoke run)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-anchor", action="store_true", help="carme, the floor and the ceiling only")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "terminals.md")
    args = parser.parse_args()
    args.rounds = 1 if args.quick else args.rounds
    args.keys = 50 if args.quick else 500
    args.megabytes = 2.0 if args.quick else 50.0
    work = Path(tempfile.mkdtemp(prefix="carme-terminals-bench-"))
    load_before = f"{os.getloadavg()[0]:.2f}"
    try:
        servers = start_servers(work, anchor=not args.no_anchor)
        try:
            results = asyncio.run(measure(servers, args))
        finally:
            for server in servers.values():
                server.stop()
        header = (f"terminals benchmark, {time.strftime('%Y-%m-%d %H:%M')}, Python {sys.version.split()[0]}, "
                  f"load average {load_before} at the start, {os.getloadavg()[0]:.2f} at the end, "
                  f"{args.rounds} round(s)")
        text = table(results, args.megabytes, header)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(text)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        for leftover in Path("/tmp").glob(f"carme-bench-{os.getpid()}*"):
            leftover.unlink()


if __name__ == "__main__":
    main()
