"""The cold first load of JupyterLab: carme (carme-lab) against jupyter_server + jupyterlab.

    .venv/bin/python bench/lab_bench.py [--rounds 3]

Each round opens ``/lab/tree/bench.ipynb?token=...`` in a fresh Chromium context (empty cache,
no cookies) and stops the clock when the status bar shows the notebook's kernel idle. Measured:
that time, the requests made and the bytes the browser received for them (encoded, as sent on
the wire: compressed where the server compressed). Both servers run from fresh Jupyter homes
with the same ``benchpy`` kernel; JupyterLab 4.6.5 on both sides (jupyterlab in the anchor's own
venv, ``bench/.anchor-lab-venv``; jupyterlab-js for carme-lab). Labextensions only carme's venv
has (the widgets of its test dependencies) are disabled in the page config for both.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures import KERNEL_NAME, make_jupyter_home  # noqa: E402
from servers import TOKEN, ServerProc, ensure_anchor, free_port, launch  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update"]
ANCHOR = "jupyter_server+jupyterlab"
LAB_VENV = Path(__file__).resolve().parent / ".anchor-lab-venv"
LAB_REQUIREMENTS = ["jupyter_server>=2.21,<2.22", "jupyterlab==4.6.5"]
# Labextensions installed in carme's venv by its test dependencies, absent from the anchor's.
DISABLED = ["@jupyter-widgets/jupyterlab-manager", "jupyter-matplotlib"]
NOTEBOOK = {"cells": [{"cell_type": "code", "execution_count": None, "id": "c1", "metadata": {}, "outputs": [],
                       "source": "1+1"}],
            "metadata": {"kernelspec": {"name": KERNEL_NAME, "display_name": "bench python", "language": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


@dataclass
class Load:
    seconds: float
    requests: int
    bytes: int


def start_carme(root: Path, env: dict[str, str], logs: Path) -> ServerProc:
    port = free_port()
    command = [str(Path(sys.executable).parent / "carme"), "--log-level", "WARNING", "serve", str(root),
               "--port", str(port), "--token", TOKEN, "--no-browser"]
    for ep in entry_points(group="carme.extensions"):  # lab alone, as the anchor is jupyterlab alone
        command += ["--enable" if ep.name == "lab" else "--disable", ep.name]
    return launch("carme", command, port, env, logs, root)


def start_anchor(python: Path, root: Path, env: dict[str, str], logs: Path) -> ServerProc:
    port = free_port()
    command = [str(python), "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}",
               f"--ServerApp.root_dir={root}", "--log-level=WARN", "--allow-root"]
    return launch(ANCHOR, command, port, env | {"BENCH_TCP_NODELAY": "0"}, logs, root)


def cold_load(browser: object, server: ServerProc) -> Load:
    """One first load in a fresh context: time to an idle kernel, requests and bytes received."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(120_000)
    finished: list[object] = []
    page.on("requestfinished", lambda request: finished.append(request))
    try:
        started = time.perf_counter()
        page.goto(f"{server.url}/lab/tree/bench.ipynb?token={TOKEN}")
        page.locator(".jp-StatusBar-Widget").get_by_text(re.compile(r"\| Idle$")).wait_for()
        seconds = time.perf_counter() - started
        received = sum(r.sizes()["responseBodySize"] for r in finished)  # type: ignore[attr-defined]
        return Load(seconds, len(finished), received)
    finally:
        context.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--targets", default=f"carme,{ANCHOR}", help=f"comma list of: carme, {ANCHOR}")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    targets = args.targets.split(",")
    anchor = ensure_anchor(LAB_VENV, LAB_REQUIREMENTS) if ANCHOR in targets else None
    loads: dict[str, list[Load]] = {label: [] for label in ("carme", ANCHOR) if label in targets}
    with tempfile.TemporaryDirectory(prefix="carme-lab-bench-") as tmp, sync_playwright() as p:
        work = Path(tmp)
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        servers: dict[str, ServerProc] = {}
        try:
            for label in loads:
                home = work / label
                root = home / "root"
                root.mkdir(parents=True)
                (root / "bench.ipynb").write_text(json.dumps(NOTEBOOK))
                env = make_jupyter_home(home / "jupyter")
                labconfig = Path(env["JUPYTER_CONFIG_DIR"]) / "labconfig"
                labconfig.mkdir(parents=True, exist_ok=True)
                (labconfig / "page_config.json").write_text(json.dumps({"disabledExtensions": dict.fromkeys(DISABLED, True)}))
                full_env = {k: v for k, v in os.environ.items()
                            if not k.startswith(("CARME_", "JUPYTER_"))} | env
                if label == "carme":
                    servers[label] = start_carme(root, full_env, work / "logs")
                else:
                    assert anchor is not None
                    servers[label] = start_anchor(anchor, root, full_env, work / "logs")
            for _ in range(args.rounds):  # alternating, so both see the same machine load
                for label, server in servers.items():
                    loads[label].append(cold_load(browser, server))
                    print(f"bench: {label} {loads[label][-1]}", file=sys.stderr, flush=True)
        finally:
            for server in servers.values():
                server.stop()
            browser.close()
    print("| cold /lab to an idle kernel | time (s, median; first) | requests | received (MB) |")
    print("|---|---:|---:|---:|")
    for label, runs in loads.items():
        print(f"| {label} | {statistics.median(r.seconds for r in runs):.2f}; {runs[0].seconds:.2f} | "
              f"{runs[0].requests} | {runs[0].bytes / 1e6:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
