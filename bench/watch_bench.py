"""Benchmark of the watch extension (no anchor: jupyter_server has no file watching).

Starts ``carme serve`` (a subprocess, watch enabled) on a tree of N files, then measures:

- the time watching takes to start (the backend walks the tree and adds its watches, and the
  watcher indexes the reported paths);
- server CPU while the tree is at rest (``/proc/<pid>/stat`` utime + stime over ``--idle`` s), with
  watch on and, as the baseline, off (other extensions off in both);
- latency from a write on disk to its event at a websocket client on /api/events/subscribe
  (``--writes`` writes, one at a time), p50 / p99.

    python bench/watch_bench.py [--files 50000] [--idle 10] [--writes 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
from websockets.asyncio.client import connect

from carme.plugins import installed_extensions

TOKEN = "bench-token"
FILE_CHANGED = "https://events.carme.dev/watch/file_changed/v1"
HEADERS = {"Authorization": f"token {TOKEN}"}


def make_tree(root: Path, files: int, per_dir: int = 100) -> None:
    for i in range(files):
        folder = root / f"d{i // per_dir:04}"
        if i % per_dir == 0:
            folder.mkdir()
        (folder / f"f{i % per_dir:03}.txt").write_bytes(b"x")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(condition, what: str, deadline_s: float = 120.0):  # type: ignore[no-untyped-def]
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            value = condition()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(0.02)
    raise SystemExit(f"timed out waiting for {what}")


async def latencies(ws_url: str, root: Path, writes: int) -> list[float]:
    out: list[float] = []
    async with connect(ws_url + "/api/events/subscribe", additional_headers=HEADERS, proxy=None) as ws:
        (root / "lat").mkdir()
        await asyncio.sleep(0.5)  # let the new folder's watch be added
        for i in range(writes):
            name = f"lat/w{i}.txt"
            start = time.perf_counter()
            (root / name).write_text(str(i))
            while True:
                event = orjson.loads(await asyncio.wait_for(ws.recv(), 30))
                if event.get("schema_id") == FILE_CHANGED and event["path"] == name:
                    out.append(time.perf_counter() - start)
                    break
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextlib.contextmanager
def carme_serve(root: Path, env: dict[str, str], watch: bool, polling: bool) -> Iterator[tuple[int, str]]:
    """``carme serve`` on ``root`` with only the watch extension (or none): (pid, base URL)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "carme.cli", "--log-level", "WARNING", "serve", str(root), "--port", str(port),
           "--no-browser", "--token", TOKEN]
    for name in installed_extensions():
        cmd += ["--enable" if name == "watch" and watch else "--disable", name]
    if polling:
        cmd += ["--set", "watch.polling=true"]
    proc = subprocess.Popen(cmd, env=env)
    try:
        def up() -> bool:
            if proc.poll() is not None:
                raise SystemExit(f"carme serve exited with {proc.returncode} (port {port} taken meanwhile?)")
            return httpx.get(url + "/api/status", headers=HEADERS).status_code == 200

        wait_for(up, "carme to serve")
        yield proc.pid, url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def idle_cpu(pid: int, seconds: float) -> float:
    time.sleep(2.0)  # let start-up work settle
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return cpu_seconds(pid) - before


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=50_000)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of CPU measurement at rest")
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--polling", action="store_true", help="measure watch.polling=true instead")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="carme-watch-bench-"))
    root = work / "root"
    root.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CARME_", "JUPYTER_"))}
    for name in ("config", "data", "runtime"):
        (work / name).mkdir()
        env[f"JUPYTER_{name.upper()}_DIR"] = str(work / name)
    env["JUPYTER_CONFIG_PATH"] = str(work / "config")
    try:
        t0 = time.perf_counter()
        make_tree(root, args.files)
        tree_s = time.perf_counter() - t0
        with carme_serve(root, env, watch=False, polling=False) as (pid, _url):
            baseline_cpu = idle_cpu(pid, args.idle)
        with carme_serve(root, env, watch=True, polling=args.polling) as (pid, url):
            def watching() -> dict[str, object] | None:
                status = httpx.get(url + "/api/watch", headers=HEADERS).json()
                return status if status["state"] == "watching" else None

            status = wait_for(watching, "the watcher to watch")
            watch_cpu = idle_cpu(pid, args.idle)
            lat = asyncio.run(latencies("ws" + url[4:], root, args.writes))
            rss_kb = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                          if line.startswith("VmRSS:"))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def cpu(seconds: float) -> str:
        return f"{seconds:.3f} s = {100 * seconds / args.idle:.2f} % of one core"

    rows = [
        ("tree", f"{args.files} files in {args.files // 100} folders (made in {tree_s:.1f} s)"),
        ("mode", "polling" if args.polling else "native"),
        ("watch start (walk + index)", f"{status['open_ms']:.0f} ms"),
        (f"CPU at rest {args.idle:.0f} s, watch", cpu(watch_cpu)),
        (f"CPU at rest {args.idle:.0f} s, no watch", cpu(baseline_cpu)),
        ("server RSS, watch", f"{rss_kb / 1024:.0f} MiB"),
        (f"write -> event p50 ({len(lat)} writes)", f"{statistics.median(lat) * 1000:.1f} ms"),
        ("write -> event p99", f"{pct(lat, 0.99) * 1000:.1f} ms"),
        ("write -> event max", f"{max(lat) * 1000:.1f} ms"),
    ]
    width = max(len(k) for k, _ in rows)
    print("carme watch benchmark")
    for key, value in rows:
        print(f"  {key.ljust(width)}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
