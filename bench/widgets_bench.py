"""What the widgets extension costs: carme with widget-state tracking on vs off, and memory.

    .venv/bin/python bench/widgets_bench.py            # full run, table on stdout
    .venv/bin/python bench/widgets_bench.py --quick    # small smoke run

Each mode runs its own ``carme serve`` (all other extensions disabled, iopub rate limit off) and
kernel, both at once; every measurement is interleaved between them (alternating which goes
first) over several rounds and the median is kept, so the machine's noise falls on both alike.
Rows:

- execute round trip (execute_request -> idle) with no widgets, in microseconds;
- iopub throughput of a stream flood (no comm messages: the tracker only reads msg_type) and of
  a widget-update flood (``s.value += 1`` in a loop: every message is a comm_msg the tracker
  parses and applies), in messages per second, with the server's own CPU per message;
- memory: the store alone holding 10,000 IntSlider-sized models (tracemalloc, in this process),
  and the server's RSS growth while a kernel holds 10,000 live models (3,334 IntSliders with
  their Layout and SliderStyle), tracking on vs off.

The criterion (issue 6): tracking costs under 5% of throughput and round-trip time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import httpx
import ipywidgets
import orjson

from carme.kernels.message import KernelMessage
from carme_widgets.state import WidgetStore
from carme_widgets.tracker import KernelWidgets

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures import KERNEL_NAME, make_jupyter_home  # noqa: E402
from kclients import WsKernelClient  # noqa: E402
from procstat import CpuMeter, rss_bytes  # noqa: E402
from servers import TOKEN, ServerProc, free_port, launch  # noqa: E402

MODES = ("off", "on")


@dataclass(frozen=True)
class Plan:
    round_trips: int = 100  # per round
    stream_flood: int = 10_000  # per round
    widget_flood: int = 5_000  # per round
    sliders: int = 3_334  # x3 models each (slider, layout, style) = 10,002 live models
    rounds: int = 6


def start_carme(mode: str, root: Path, env: dict[str, str], logdir: Path) -> ServerProc:
    """``carme serve`` with only the widgets extension on (mode on) or none (mode off)."""
    port = free_port()
    command = [str(Path(sys.executable).parent / "carme"), "--log-level", "WARNING", "serve", str(root),
               "--port", str(port), "--token", TOKEN, "--no-browser", "--set", "iopub_msg_rate_limit=0",
               "--set", "iopub_data_rate_limit=0"]
    for ep in entry_points(group="carme.extensions"):
        if not (mode == "on" and ep.name == "widgets"):
            command += ["--disable", ep.name]
    if mode == "on":
        command += ["--enable", "widgets"]
    return launch(f"carme-{mode}", command, port, env, logdir, root)


async def run_until_idle(kc: WsKernelClient, code: str) -> int:
    """Execute ``code``; return the number of iopub messages it produced (up to idle)."""
    msg_id = await kc.send("shell", "execute_request", {"code": code, "silent": False, "store_history": False,
                                                        "user_expressions": {}, "allow_stdin": False})
    count = 0
    async with asyncio.timeout(600):
        while True:
            msg = await kc.recv()
            if msg.parent_id != msg_id:
                continue
            if msg.channel == "iopub":
                count += 1
                if msg.msg_type == "status" and msg.content().get("execution_state") == "idle":
                    return count
            elif msg.msg_type == "execute_reply" and msg.content().get("status") != "ok":
                raise RuntimeError(f"kernel error: {msg.content()}")


class Target:
    """One mode's server, kernel and websocket client, kept for the whole run."""

    def __init__(self, mode: str, server: ServerProc) -> None:
        self.mode, self.server = mode, server
        self.http = httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=120)
        self.kernel_id = ""
        self.kc: WsKernelClient | None = None

    async def open(self) -> Target:
        self.kernel_id = (await self.http.post("/api/kernels", json={"name": KERNEL_NAME})).raise_for_status().json()["id"]
        self.kc = await WsKernelClient(self.server.ws_url, self.kernel_id, self.server.headers, "v1", False).connect()
        await self.run("import ipywidgets as w\ns = w.IntSlider(max=10**9)")
        for _ in range(10):  # warm up
            await self.run("pass")
        return self

    async def run(self, code: str) -> int:
        assert self.kc is not None
        return await run_until_idle(self.kc, code)

    async def close(self) -> None:
        if self.kc is not None:
            await self.kc.close()
        await self.http.delete(f"/api/kernels/{self.kernel_id}")
        await self.http.aclose()
        self.server.stop()


async def round_trips(target: Target, n: int) -> float:
    """Median execute round trip of ``pass``, in us."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        await target.run("pass")
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


async def flood(target: Target, key: str, n: int) -> tuple[float, float, int]:
    """(messages per second, server CPU us per message, messages received) of an iopub flood of
    ``n`` messages."""
    code = (f"for i in range({n}):\n    print(i, flush=True)" if key == "stream"
            else f"for i in range({n}):\n    s.value = s.value + 1")
    with CpuMeter(target.server.pid) as cpu:
        t0 = time.perf_counter()
        count = await target.run(code)
        elapsed = time.perf_counter() - t0
    return count / elapsed, cpu.seconds / count * 1e6, count


async def measure(root: Path, env: dict[str, str], work: Path, plan: Plan) -> dict[str, dict[str, list[float]]]:
    """Both modes side by side, measurements interleaved (alternating which goes first), so the
    machine's noise falls on both alike."""
    targets = [await Target(mode, start_carme(mode, root, env, work / "logs")).open() for mode in MODES]
    out: dict[str, dict[str, list[float]]] = {mode: {} for mode in MODES}

    def add(mode: str, key: str, value: float) -> None:
        out[mode].setdefault(key, []).append(value)

    try:
        for i in range(plan.rounds):
            print(f"widgets bench: round {i + 1} of {plan.rounds}", file=sys.stderr, flush=True)
            order = targets if i % 2 == 0 else targets[::-1]
            for target in order:
                add(target.mode, "rtt_us", await round_trips(target, plan.round_trips))
            for key, n in (("stream", plan.stream_flood), ("widget", plan.widget_flood)):
                for target in order:
                    rate, cpu_us, count = await flood(target, key, n)
                    add(target.mode, f"{key}_rate", rate)
                    add(target.mode, f"{key}_cpu_us", cpu_us)
                    if key == "widget":  # one comm_msg per update: a shortfall is loss (the kernel's PUB drops)
                        add(target.mode, "widget_lost", max(0, n + 3 - count))  # + busy, execute_input, idle
        for target in targets:
            before = rss_bytes(target.server.pid)
            await target.run(f"keep = [w.IntSlider(value=i) for i in range({plan.sliders})]")
            await asyncio.sleep(1.0)  # let the server finish reading iopub
            add(target.mode, "rss_models_mb", (rss_bytes(target.server.pid) - before) / 1e6)
            if target.mode == "on":
                state = (await target.http.get(f"/api/widgets/{target.kernel_id}")).raise_for_status().json()
                add(target.mode, "models", len(state["state"]))
    finally:
        for target in targets:
            await target.close()
    return out


def store_memory(models: int) -> tuple[float, float]:
    """(MB, microseconds per comm_open) for a WidgetStore holding ``models`` IntSlider states."""
    slider = ipywidgets.IntSlider()
    state = slider.get_state()
    slider.close()
    content = orjson.dumps({"comm_id": "", "target_name": "jupyter.widget", "data": {"state": state, "buffer_paths": []}})
    messages = [content.replace(b'"comm_id":""', f'"comm_id":"{i:032x}"'.encode()) for i in range(models)]
    store = WidgetStore()
    tracemalloc.start()
    t0 = time.perf_counter()
    for raw in messages:
        store.apply("comm_open", orjson.loads(raw))
    elapsed = time.perf_counter() - t0
    size, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(store) == models
    return size / 1e6, elapsed / models * 1e6


def tracker_cost(repeat: int = 200_000) -> tuple[float, float]:
    """In-process cost of the subscription callback, in us per message: (a non-comm iopub
    message, a comm_msg update of a live slider). Deterministic where the end-to-end rows are noisy."""
    store_owner = KernelWidgets.__new__(KernelWidgets)  # the hot path needs only these fields
    store_owner.kernel_id, store_owner.store, store_owner.comms, store_owner._targets = "k", WidgetStore(), {}, {}
    slider = ipywidgets.IntSlider()
    state = slider.get_state()
    slider.close()
    store_owner.store.apply("comm_open", {"comm_id": "m", "target_name": "jupyter.widget", "data": {"state": state}})

    def message(msg_type: str, content: dict[str, object]) -> KernelMessage:
        header = {"msg_id": "x", "msg_type": msg_type, "session": "s", "username": "u", "date": "", "version": "5.3"}
        return KernelMessage.from_frames("iopub", [orjson.dumps(header), b"{}", b"{}", orjson.dumps(content)])

    stream = message("stream", {"name": "stdout", "text": "1\n"})
    update = message("comm_msg", {"comm_id": "m", "data": {"method": "update", "state": {"value": 3},
                                                            "buffer_paths": []}})
    results = []
    for msg in (stream, update):
        t0 = time.perf_counter()
        for _ in range(repeat):
            store_owner.on_message(msg)
        results.append((time.perf_counter() - t0) / repeat * 1e6)
    return results[0], results[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few repetitions (smoke run)")
    args = parser.parse_args(argv)
    plan = Plan(round_trips=20, stream_flood=1000, widget_flood=500, sliders=334, rounds=2) if args.quick else Plan()

    work = Path(tempfile.mkdtemp(prefix="carme-widgets-bench-"))
    root = work / "root"
    root.mkdir()
    env = make_jupyter_home(work / "jupyter")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CARME_") and k != "JUPYTER_TOKEN"} | env
    runs = asyncio.run(measure(root, full_env, work, plan))
    med = {mode: {key: statistics.median(values) for key, values in runs[mode].items()} for mode in MODES}
    store_mb, open_us = store_memory(10_000)
    plain_us, comm_us = tracker_cost()

    def row(label: str, key: str, unit: str, higher_is_better: bool) -> str:
        off, on = med["off"][key], med["on"][key]
        cost = (off / on - 1) if higher_is_better else (on / off - 1)
        verdict = "" if key.startswith("rss") else ("ok" if cost < 0.05 else "OVER 5%")
        # The spread of one mode's rounds says how much of the cost column is the machine's noise.
        values = runs["off"][key]
        spread = (max(values) - min(values)) / statistics.median(values) * 100 if len(values) > 1 else 0.0
        return f"| {label} | {off:,.1f} | {on:,.1f} | {unit} | {cost * 100:+.1f}% | {verdict} | {spread:.0f}% |"

    lines = [
        f"carme widgets benchmark ({'quick' if args.quick else 'full'}, {plan.rounds} round(s), medians; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        "| measure | tracking off | tracking on | unit | cost of tracking | < 5% | noise (spread of off rounds) |",
        "|---|---|---|---|---|---|---|",
        row("execute round trip", "rtt_us", "us", False),
        row(f"iopub stream flood ({plan.stream_flood:,} msgs)", "stream_rate", "msg/s", True),
        row("  server CPU per stream msg", "stream_cpu_us", "us", False),
        row(f"iopub widget-update flood ({plan.widget_flood:,} comm_msg)", "widget_rate", "msg/s", True),
        row("  server CPU per widget update", "widget_cpu_us", "us", False),
        row(f"server RSS growth, {plan.sliders * 3:,} live models", "rss_models_mb", "MB", False),
        "",
        f"WidgetStore alone, 10,000 IntSlider models: {store_mb:.1f} MB ({store_mb * 1e6 / 10_000:,.0f} bytes per "
        f"model), {open_us:.1f} us per comm_open applied (JSON parse included).",
    ]
    lines += [
        f"Tracker callback in process: {plain_us:.2f} us per non-comm message "
        f"({plain_us / med['off']['stream_cpu_us'] * 100:.2f}% of the server's CPU per stream message with tracking off), "
        f"{comm_us:.2f} us per widget update ({comm_us / med['off']['widget_cpu_us'] * 100:.1f}% of the server's "
        "CPU per widget update with tracking off).",
    ]
    lost = {mode: int(sum(runs[mode]["widget_lost"])) for mode in MODES}
    if any(lost.values()):
        lines.append(f"Widget updates lost between kernel and client (all rounds): off {lost['off']:,}, on {lost['on']:,}.")
    if "models" in med["on"]:
        lines.append(f"Models tracked by the server after the memory step: {med['on']['models']:,.0f}.")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
