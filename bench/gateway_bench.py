"""Benchmark of kernels on a Jupyter Enterprise Gateway: carme -> gateway, side by side with
jupyter_server configured with the same gateway, and a direct client of the gateway (the floor).

One Enterprise Gateway 3.3 (from ``bench/.anchor-gateway-venv``, made with uv on first use; token
auth on) runs local ipykernel kernels for all three:

- ``direct``: the bench's websocket straight to the gateway's channels (v1 protocol);
- ``carme``: ``carme serve`` with only the gateway extension, its client on carme's websocket (v1);
- ``jupyter_server``: jupyter_server 2.21 (``bench/.anchor-venv``) with ``--GatewayClient.url``; its
  gateway relay forces the legacy protocol, so its client speaks legacy.

Measured round by round, alternating between targets so they share the machine's noise:

- execute ``pass`` round trip (to both the execute_reply and the idle status), p50 / p99;
- output throughput: one ``print`` of base64 text, in MB/s at the client.

The row to watch: carme's round trip over the direct client's (target <= 1.2).
No permessage-deflate anywhere: the rows measure the relays, not compression.

    python bench/gateway_bench.py [--quick] [--out bench/results/gateway.md]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixtures import make_jupyter_home  # noqa: E402
from kclients import KernelClient, WsKernelClient  # noqa: E402
from kernels import execute  # noqa: E402
from results import median, percentile  # noqa: E402
from servers import GATEWAY_REQUIREMENTS, GATEWAY_VENV, HERE, TOKEN, ServerProc, ensure_anchor, free_port, launch  # noqa: E402

from carme.plugins import installed_extensions  # noqa: E402

USER = "bench"  # KERNEL_USERNAME (the gateway refuses root's kernels)
HEADERS = {"Authorization": f"token {TOKEN}"}
KERNEL = "python3"


def base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CARME_", "JUPYTER_", "KERNEL_", "EG_"))}
    return {**env, **make_jupyter_home(home)}


def start_gateway(work: Path) -> ServerProc:
    python = ensure_anchor(GATEWAY_VENV, GATEWAY_REQUIREMENTS)
    port = free_port()
    command = [str(python.parent / "jupyter-enterprisegateway"), "--ip=127.0.0.1", f"--port={port}",
               "--port_retries=0", "--log-level=WARN"]
    # jupyter_server lists the gateway's kernels on every /api/kernels and /api/status (carme does not).
    # TCP_NODELAY on its websockets (servers.py's sitecustomize): without it tornado's small frames
    # wait for the delayed ACK, ~40 ms per round trip that would drown what the relays cost.
    env = {**base_env(work / "eg-home"), "EG_AUTH_TOKEN": TOKEN, "EG_LIST_KERNELS": "true", "BENCH_TCP_NODELAY": "1"}
    return launch("gateway", command, port, env, work / "logs", work, ready_path="/api/kernelspecs")


def start_carme(work: Path, gateway: ServerProc) -> ServerProc:
    port = free_port()
    command = [str(Path(sys.executable).parent / "carme"), "--log-level", "WARNING", "serve", str(work),
               "--port", str(port), "--token", TOKEN, "--no-browser"]
    for name in installed_extensions():
        command += ["--enable" if name == "gateway" else "--disable", name]
    env = {**base_env(work / "carme-home"), "CARME_GATEWAY__URL": gateway.url, "CARME_GATEWAY__AUTH_TOKEN": TOKEN,
           "CARME_GATEWAY__USERNAME": USER}
    return launch("carme", command, port, env, work / "logs", work)


def start_jupyter_server(work: Path, gateway: ServerProc) -> ServerProc:
    python = ensure_anchor()
    port = free_port()
    command = [str(python), "-m", "jupyter_server", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}",
               f"--ServerApp.root_dir={work}", f"--GatewayClient.url={gateway.url}",
               f"--GatewayClient.auth_token={TOKEN}", "--log-level=WARN", "--allow-root"]
    env = {**base_env(work / "js-home"), "KERNEL_USERNAME": USER, "BENCH_TCP_NODELAY": "1"}
    return launch("jupyter_server", command, port, env, work / "logs", work)


class Lane:
    """One target's kernel and client."""

    def __init__(self, label: str, server: ServerProc, protocol: str) -> None:
        self.label, self.server, self.protocol = label, server, protocol
        self.kernel_id = ""
        self.client: KernelClient | None = None
        self.walls: list[float] = []
        self.rates: list[float] = []

    async def open(self, http: httpx.AsyncClient) -> None:
        body = {"name": KERNEL, "env": {"KERNEL_USERNAME": USER}} if self.label == "direct" else {"name": KERNEL}
        reply = await http.post(self.server.url + "/api/kernels", json=body, headers=self.server.headers)
        if reply.status_code != 201:
            raise RuntimeError(f"{self.label}: POST /api/kernels -> {reply.status_code}: {reply.text[:300]}")
        self.kernel_id = reply.json()["id"]
        self.client = await WsKernelClient(self.server.ws_url, self.kernel_id, self.server.headers, self.protocol,
                                           deflate=False).connect()
        await self.client.request("kernel_info_request", {}, timeout=120)
        for _ in range(20):  # warm-up
            await execute(self.client, "pass")

    async def close(self, http: httpx.AsyncClient) -> None:
        if self.client is not None:
            await self.client.close()
        if self.kernel_id:
            await http.delete(f"{self.server.url}/api/kernels/{self.kernel_id}", headers=self.server.headers)


async def measure(lanes: list[Lane], rounds: int, print_mb: float, print_reps: int) -> None:
    block = 25
    for _ in range(max(1, rounds // block)):
        for lane in lanes:
            assert lane.client is not None
            for _ in range(block):
                _outputs, wall = await execute(lane.client, "pass")
                lane.walls.append(wall)
    size = int(print_mb * 1_000_000)
    for lane in lanes:
        assert lane.client is not None
        await execute(lane.client, f"import base64 as _b, os as _o; _big = _b.b64encode(_o.urandom({size * 3 // 4})).decode()")
    for _ in range(print_reps):
        for lane in lanes:
            assert lane.client is not None
            outputs, wall = await execute(lane.client, "print(_big)")
            got = sum(m.nbytes for m in outputs if m.msg_type == "stream")
            if got < size:
                raise RuntimeError(f"{lane.label}: received {got} of {size} bytes of output")
            lane.rates.append(size / 1e6 / wall)


def render(lanes: list[Lane], header: str) -> tuple[str, dict[str, dict[str, float]]]:
    values = {lane.label: {"rt50_ms": percentile(lane.walls, 50) * 1000, "rt99_ms": percentile(lane.walls, 99) * 1000,
                           "print_mb_s": median(lane.rates)} for lane in lanes}
    labels = [lane.label for lane in lanes]
    protocols = {lane.label: lane.protocol for lane in lanes}
    lines = [header, "", "| benchmark | " + " | ".join(f"{label} ({protocols[label]})" for label in labels) + " |",
             "|---|" + "---|" * len(labels)]
    for key, name in (("rt50_ms", "execute `pass` round trip p50 (ms)"), ("rt99_ms", "execute `pass` round trip p99 (ms)"),
                      ("print_mb_s", "output throughput, one print (MB/s)")):
        lines.append(f"| {name} | " + " | ".join(f"{values[label][key]:.2f}" for label in labels) + " |")
    ratio = values["carme"]["rt50_ms"] / values["direct"]["rt50_ms"]
    lines += ["", f"carme / direct round trip p50: **{ratio:.2f}x** (target <= 1.2: {'met' if ratio <= 1.2 else 'NOT met'})"]
    if "jupyter_server" in values:
        js = values["jupyter_server"]["rt50_ms"] / values["direct"]["rt50_ms"]
        lines.append(f"jupyter_server / direct round trip p50: {js:.2f}x")
    values["ratios"] = {"carme_over_direct_rt50": ratio}
    return "\n".join(lines) + "\n", values


async def run(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="carme-gateway-bench-"))
    servers: list[ServerProc] = []
    lanes: list[Lane] = []
    async with httpx.AsyncClient(timeout=120) as http:
        try:
            gateway = start_gateway(work)
            servers.append(gateway)
            carme = start_carme(work, gateway)
            servers.append(carme)
            lanes = [Lane("direct", gateway, "v1"), Lane("carme", carme, "v1")]
            if not args.no_jupyter_server:
                js = start_jupyter_server(work, gateway)
                servers.append(js)
                lanes.append(Lane("jupyter_server", js, "legacy"))
            for lane in lanes:
                await lane.open(http)
            rounds, print_mb, reps = (50, 1.0, 1) if args.quick else (args.rounds, args.print_mb, 3)
            t0 = time.perf_counter()
            await measure(lanes, rounds, print_mb, reps)
            header = (f"# Kernels on Enterprise Gateway 3.3.0 ({rounds} round trips, {print_mb:g} MB print x{reps}, "
                      f"{time.perf_counter() - t0:.0f} s)")
            table, values = render(lanes, header)
        finally:
            for lane in lanes:
                try:
                    await lane.close(http)
                except Exception:  # noqa: BLE001 - the servers are stopped next anyway
                    pass
            for server in reversed(servers):
                server.stop()
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table)
    out.with_suffix(".json").write_text(json.dumps(values, indent=2))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run (the smoke test)")
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--print-mb", type=float, default=10.0)
    parser.add_argument("--no-jupyter-server", action="store_true", help="skip the jupyter_server column")
    parser.add_argument("--out", default=str(HERE / "results" / "gateway.md"))
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
