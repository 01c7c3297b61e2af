"""Dashboards: carme side by side with Voila 0.5 on the same notebook and kernel.

    .venv/bin/python bench/dashboards_bench.py            # full run, table on stdout
    .venv/bin/python bench/dashboards_bench.py --quick    # small smoke run

Voila runs from its own throwaway venv (``bench/.voila-venv``, made with uv on first use), so it
never enters carme's environment. Both serve the same notebook in single-notebook app mode
(``carme dashboard NB``, ``voila NB``), authentication off, the same kernelspec (ipykernel on
this interpreter), and are measured by the same raw HTTP client:

- one visit at a time, cold (a kernel started for the visit: carme forks it from its warm fork
  server, "carme spawned" starts a new Python as before, ``fork_kernels`` off) and pooled (carme's
  ``pool_size``, Voila's ``--preheat_kernel --pool_size``), rounds interleaved between the
  targets: time to the first byte of the page, to the first cell's output, to the last cell's
  output (the end of the render); medians;
- 50 visitors at once on a fresh server: how many pages were rendered completely, the peak RSS
  of the server process (kernels not included) and of the whole tree, and the kernels still
  running once the visitors are gone (carme: ``connect_timeout`` 10 s, since these visitors
  never open a websocket; Voila shuts kernels down only on the browser's beacon).

Voila's preheated kernels run the whole notebook before the visit and send the cached HTML, so
its pooled numbers are a cached page; carme's pooled kernel runs the cells after the visit
claimed it (the request reaches the notebook, and the page streams as the cells run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures import KERNEL_NAME, make_jupyter_home  # noqa: E402
from procstat import descendants, rss_bytes, tree_rss  # noqa: E402
from servers import HERE, ServerProc, ensure_anchor, free_port, launch  # noqa: E402

VOILA_VENV = HERE / ".voila-venv"
VOILA_REQUIREMENTS = ["voila>=0.5,<0.6"]
FIRST, LAST = b"first-output", b"last-output"  # made at run time: the sources never hold them whole
CELLS = [
    ("markdown", "# A bench dashboard\n\nSome prose, then a few cells."),
    ("code", "print('first' + '-output')"),
    ("code", "import ipywidgets as w\nslider = w.IntSlider(value=3, description='n')\nslider"),
    ("code", "total = sum(i * i for i in range(200_000))\nprint(total)"),
    ("code", "from IPython.display import HTML\nHTML('<b>%s</b>' % ('last' + '-output'))"),
]
CARME, CARME_SPAWN, CARME_POOL = "carme", "carme spawned", "carme pooled"
VOILA, VOILA_POOL = "voila", "voila preheated"
SPAWNED = {"dashboards.fork_kernels": False}  # each kernel a new Python, as before the fork server


def write_notebook(path: Path) -> None:
    cells = [{"cell_type": kind, "metadata": {}, "source": source, "id": f"c{i}",
              **({"outputs": [], "execution_count": None} if kind == "code" else {})}
             for i, (kind, source) in enumerate(CELLS)]
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "cells": cells, "metadata": {
        "kernelspec": {"name": KERNEL_NAME, "display_name": "bench python", "language": "python"}}}))


def start(label: str, notebook: Path, env: dict[str, str], logdir: Path, voila: Path, pool: int,
          carme_settings: dict[str, object]) -> ServerProc:
    port = free_port()
    if label.startswith("carme"):
        command = [str(Path(sys.executable).parent / "carme"), "--log-level", "WARNING", "dashboard", str(notebook),
                   "--port", str(port), "--no-auth", "--no-browser"]
        for key, value in {**carme_settings, "dashboards.pool_size": pool}.items():
            command += ["--set", f"{key}={json.dumps(value)}"]
        ready = "/dashboards/templates/lab/static/base.css"
    else:
        command = [str(voila), "-m", "voila", str(notebook), "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
                   "--Voila.port_retries=0"]
        if pool:
            command += ["--preheat_kernel=True", f"--pool_size={pool}"]
        ready = "/voila/static/voila.js"
    server = launch(label, command, port, env, logdir, notebook.parent, ready_path=ready)
    server.headers = {}
    return server


@dataclass
class VisitTimes:
    status: int
    ttfb: float | None = None
    first: float | None = None
    last: float | None = None

    @property
    def rendered(self) -> bool:
        return self.status == 200 and self.last is not None


async def visit(url: str) -> VisitTimes:
    """GET the page, noting when its first byte, the first cell's and the last cell's output arrive."""
    host, port = url.split("//", 1)[1].split(":")
    loop = asyncio.get_running_loop()
    start_time = loop.time()
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/html\r\nConnection: close\r\n\r\n".encode())
    seen = b""
    times = VisitTimes(0)
    try:
        while data := await reader.read(65536):
            now = loop.time() - start_time
            if times.ttfb is None:
                times.ttfb = now
            seen = seen[-64:] + data  # a marker split between two reads is still found
            if times.first is None and FIRST in seen:
                times.first = now
            if times.last is None and LAST in seen:
                times.last = now
            if not times.status and b" " in seen:
                times.status = int(seen.split(b" ", 2)[1])
    finally:
        writer.close()
    return times


@dataclass
class Column:
    ttfb: list[float] = field(default_factory=list)
    first: list[float] = field(default_factory=list)
    last: list[float] = field(default_factory=list)
    failed: int = 0

    def add(self, times: VisitTimes) -> None:
        if not times.rendered:
            self.failed += 1
            return
        assert times.ttfb is not None and times.last is not None
        self.ttfb.append(times.ttfb)
        self.last.append(times.last)
        if times.first is not None:
            self.first.append(times.first)


async def sequential(servers: dict[str, ServerProc], rounds: int, settle: float) -> dict[str, Column]:
    """One visit per target per round, alternating the order; pools get ``settle`` s to refill."""
    columns = {label: Column() for label in servers}
    labels = list(servers)
    for round_index in range(rounds):
        order = labels if round_index % 2 == 0 else labels[::-1]
        for label in order:
            columns[label].add(await visit(servers[label].url))
        _log(f"round {round_index + 1}/{rounds}")
        await asyncio.sleep(settle)
    return columns


@dataclass
class Crowd:
    rendered: int
    visitors: int
    server_peak_mb: float
    tree_peak_mb: float
    kernels_left: int


async def crowd(server: ServerProc, visitors: int, leave_wait: float) -> Crowd:
    """``visitors`` at once; peak RSS while they load; kernels left ``leave_wait`` s after."""
    peaks = [0, 0]
    done = asyncio.Event()

    async def sample() -> None:
        while not done.is_set():
            peaks[0] = max(peaks[0], rss_bytes(server.pid))
            peaks[1] = max(peaks[1], await asyncio.to_thread(tree_rss, server.pid))
            await asyncio.sleep(0.05)

    sampler = asyncio.ensure_future(sample())
    results = await asyncio.gather(*(visit(server.url) for _ in range(visitors)), return_exceptions=True)
    done.set()
    await sampler
    await asyncio.sleep(leave_wait)
    kernels = [pid for pid in descendants(server.pid) if _is_kernel(pid, server.pid)]
    rendered = sum(1 for r in results if isinstance(r, VisitTimes) and r.rendered)
    return Crowd(rendered, visitors, peaks[0] / 1e6, peaks[1] / 1e6, len(kernels))


def _is_kernel(pid: int, server_pid: int) -> bool:
    """A kernel process under the server: spawned (its command names ipykernel), or forked by a
    fork server (same command line as the server, which is not a kernel itself)."""
    command = _cmdline(pid)
    if "forkserver_main" in command:
        return _parent(pid) != server_pid
    return "kernel" in command


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def _log(text: str) -> None:
    print(f"[dashboards bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f}" if values else "-"


def render(columns: dict[str, Column], crowds: dict[str, Crowd], header: str) -> str:
    lines = [header, "", "| visit, median ms | " + " | ".join(columns) + " |",
             "|---|" + "---:|" * len(columns)]
    for name, pick in (("first byte", lambda c: c.ttfb), ("first cell's output", lambda c: c.first),
                       ("last cell's output (full render)", lambda c: c.last)):
        lines.append(f"| {name} | " + " | ".join(_ms(pick(c)) for c in columns.values()) + " |")
    lines.append("| pages not rendered | " + " | ".join(str(c.failed) for c in columns.values()) + " |")
    cold = _ratio(columns.get(CARME), columns.get(VOILA), lambda c: c.last)
    pooled_first = statistics.median(columns[CARME_POOL].first) * 1000 if CARME_POOL in columns and \
        columns[CARME_POOL].first else None
    lines += ["", f"Full render cold, carme / Voila: {cold} (target <= 0.5). First cell from a pooled kernel: "
              + (f"{pooled_first:.0f} ms" if pooled_first is not None else "-") + " (target <= 100 ms).", ""]
    if crowds:
        visitors = next(iter(crowds.values())).visitors
        lines += [f"| {visitors} visitors at once | " + " | ".join(crowds) + " |", "|---|" + "---:|" * len(crowds)]
        for name, pick in (("pages rendered", lambda c: f"{c.rendered}/{c.visitors}"),
                           ("peak server RSS, MB", lambda c: f"{c.server_peak_mb:.0f}"),
                           ("peak RSS with kernels, MB", lambda c: f"{c.tree_peak_mb:.0f}"),
                           ("kernels left after they left", lambda c: str(c.kernels_left))):
            lines.append(f"| {name} | " + " | ".join(pick(c) for c in crowds.values()) + " |")
    return "\n".join(lines) + "\n"


def _ratio(num: Column | None, den: Column | None, pick: Callable[[Column], list[float]]) -> str:
    if num is None or den is None or not pick(num) or not pick(den):
        return "-"
    return f"{statistics.median(pick(num)) / statistics.median(pick(den)):.2f}"


async def main_async(args: argparse.Namespace) -> str:
    targets = [t.strip() for t in args.targets.split(",")]
    voila = ensure_anchor(VOILA_VENV, VOILA_REQUIREMENTS) if any(t.startswith("voila") for t in targets) else Path()
    work = Path(tempfile.mkdtemp(prefix="carme-dash-bench-"))
    env = make_jupyter_home(work / "home")
    notebook = work / "root" / "dashboard.ipynb"
    notebook.parent.mkdir()
    write_notebook(notebook)
    carme_settings = {"dashboards.connect_timeout": 10.0, "dashboards.grace_period": 10.0}
    full_env = {**{k: v for k, v in os.environ.items() if not k.startswith(("CARME_", "JUPYTER_"))}, **env}
    servers: dict[str, ServerProc] = {}
    try:
        for label, pool in ((CARME, 0), (CARME_SPAWN, 0), (CARME_POOL, 2), (VOILA, 0), (VOILA_POOL, 2)):
            if label not in targets:
                continue
            settings = {**carme_settings, **(SPAWNED if label == CARME_SPAWN else {})}
            servers[label] = start(label, notebook, full_env, work / "logs", voila, pool, settings)
        await asyncio.sleep(args.settle)  # pools fill
        _log("one visit at a time")
        columns = await sequential(servers, args.rounds, args.settle)
    finally:
        for server in servers.values():
            server.stop()
    crowds: dict[str, Crowd] = {}
    for label in (label for label in (CARME, VOILA) if label in targets):
        server = start(label, notebook, full_env, work / "logs", voila, 0, carme_settings)
        try:
            _log(f"{args.visitors} visitors at once on {label}")
            crowds[label] = await crowd(server, args.visitors, args.leave_wait)
        finally:
            server.stop()
    probe = "import voila, jupyter_server; print(voila.__version__, jupyter_server.__version__)"
    versions = subprocess.run([str(voila), "-c", probe], capture_output=True, text=True).stdout.split() \
        if voila != Path() else []
    header = (f"Dashboards bench: carme vs Voila {versions[0] if versions else '?'} (jupyter_server "
              f"{versions[1] if len(versions) > 1 else '?'}), {len(CELLS)}-cell notebook, {args.rounds} rounds, "
              f"load average {open('/proc/loadavg').read().split()[0]} at the end")
    return render(columns, crowds, header)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--visitors", type=int, default=50)
    parser.add_argument("--settle", type=float, default=6.0, help="seconds for pools to refill between rounds")
    parser.add_argument("--targets", default=",".join((CARME, CARME_SPAWN, CARME_POOL, VOILA, VOILA_POOL)),
                        help="comma-separated columns to run (voila ones install Voila into its venv)")
    parser.add_argument("--leave-wait", type=float, default=15.0,
                        help="seconds after the visitors leave before kernels are counted")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.visitors, args.settle, args.leave_wait = 1, 4, 4.0, 12.0
    print(asyncio.run(main_async(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
