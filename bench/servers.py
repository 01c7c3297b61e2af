"""Start and stop the servers under test as subprocesses on 127.0.0.1 free ports with a token.

carme runs from this (the workspace) environment via ``carme serve``. The anchor, jupyter_server,
runs from its own throwaway venv (``bench/.anchor-venv``), created here on first use with uv from
PyPI, so it never enters carme's environment. ``jupyter_server+nodelay`` is the same anchor with
TCP_NODELAY set on kernel websockets by a ``sitecustomize`` that lives only in that venv.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ANCHOR_VENV = HERE / ".anchor-venv"
ANCHOR_REQUIREMENTS = ["jupyter_server>=2.21,<2.22", "ipykernel"]
TOKEN = "bench-token"
INSTALLED = ".carme-installed"  # in each throwaway venv: the base Python and requirements it was made with
# Jupyter Enterprise Gateway (bench/gateway_bench.py and tests/gateway): EG 3.3 runs on
# jupyter_server 1.24 and jupyter_client 6/7, pins of its own; its local kernels run from this
# venv too, hence ipykernel and ipywidgets (the widgets tests).
GATEWAY_VENV = HERE / ".anchor-gateway-venv"
GATEWAY_REQUIREMENTS = ["jupyter_enterprise_gateway==3.3.0", "ipykernel>=6.29,<7", "ipywidgets>=8.1"]

# Only active with BENCH_TCP_NODELAY=1, so the same venv also serves the stock anchor.
_SITECUSTOMIZE = '''\
import os
if os.environ.get("BENCH_TCP_NODELAY") == "1":
    from tornado import websocket as _ws

    _detach = _ws.WebSocketHandler._detach_stream

    def _detach_stream(self):
        stream = _detach(self)
        stream.set_nodelay(True)
        return stream

    _ws.WebSocketHandler._detach_stream = _detach_stream
'''


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_venv(venv: Path, requirements: Sequence[str]) -> Path:
    """The python of ``venv`` with ``requirements`` installed (uv venv + uv pip install): made on
    first use, and made again from scratch whenever the requirements or the base Python differ
    from what the venv records it was made with (a changed pin, a package dropped)."""
    python = _venv_python(venv)
    base = getattr(sys, "_base_executable", sys.executable)
    wanted = json.dumps({"python": base, "requirements": list(requirements)}, indent=1) + "\n"
    record = venv / INSTALLED
    if not python.exists() or not record.exists() or record.read_text() != wanted:
        env = dict(os.environ, UV_PYTHON_DOWNLOADS="never")
        env.pop("VIRTUAL_ENV", None)
        # ./dev puts uv on PATH (it installs it in ~/.local/bin when missing).
        uv = shutil.which("uv") or shutil.which("uv", path=str(Path.home() / ".local" / "bin")) or "uv"
        subprocess.run([uv, "venv", "--quiet", "--clear", "--python", base, str(venv)], check=True, env=env)
        # Bytecode compiled as ./dev compiles carme's venv: both sides installed the same way.
        subprocess.run([uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", str(python),
                        *requirements], check=True, env=env)
        record.write_text(wanted)  # last: an install that failed half-way is redone next time
    return python


def ensure_anchor(venv: Path = ANCHOR_VENV, requirements: Sequence[str] = ANCHOR_REQUIREMENTS) -> Path:
    """An anchor venv's python (:func:`ensure_venv`), with the TCP_NODELAY ``sitecustomize``."""
    python = ensure_venv(venv, requirements)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (Path(site) / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    return python


def anchor_version(python: Path) -> str:
    out = subprocess.run([str(python), "-c", "import jupyter_server, tornado; "
                          "print(jupyter_server.__version__, tornado.version)"],
                         capture_output=True, text=True, check=True).stdout.split()
    return f"jupyter_server {out[0]} (tornado {out[1]})"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProc:
    """A running server: its label, base URL, pid and process handle."""

    label: str
    url: str
    proc: subprocess.Popen
    log: Path
    headers: dict[str, str] = field(default_factory=lambda: {"Authorization": f"token {TOKEN}"})

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[len("http"):]

    def stop(self) -> None:
        """SIGTERM (clean shutdown of kernels), then SIGKILL after a grace period."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _carme_command(root: Path, port: int) -> list[str]:
    command = [str(Path(sys.executable).parent / "carme"), "--log-level", "WARNING", "serve", str(root),
               "--port", str(port), "--token", TOKEN, "--no-browser"]
    # The anchor is jupyter_server alone, so carme runs its core alone too.
    for ep in entry_points(group="carme.extensions"):
        command += ["--disable", ep.name]
    return command


# The README's embedding snippet, served with carme.run (the settings of `carme serve`).
_EMBEDDED = """
import sys, carme
app = carme.create_app(sys.argv[1], token=sys.argv[3], extensions=[])
carme.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def _embedded_command(root: Path, port: int) -> list[str]:
    return [sys.executable, "-c", _EMBEDDED, str(root), str(port), TOKEN]


def _anchor_command(python: Path, root: Path, port: int) -> list[str]:
    # The iopub rate limit is off: with its stock 1000 msg/s it drops most of a burst on purpose,
    # which would make the throughput rows measure the limiter, not the relay.
    return [str(python), "-m", "jupyter_server", "--no-browser", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.root_dir={root}", "--ZMQChannelsWebsocketConnection.limit_rate=False",
            "--log-level=WARN", "--allow-root"]


def start(label: str, root: Path, env: dict[str, str], logdir: Path, anchor_python: Path | None = None,
          timeout: float = 60) -> ServerProc:
    """Start ``carme``, ``carme embedded``, ``jupyter_server`` or ``jupyter_server+nodelay`` and wait
    until /api/status answers."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CARME_") and k != "JUPYTER_TOKEN"}
    full_env.update(env)
    if label == "carme":
        command = _carme_command(root, port)
    elif label == "carme embedded":
        command = _embedded_command(root, port)
    else:
        assert anchor_python is not None
        command = _anchor_command(anchor_python, root, port)
        full_env["BENCH_TCP_NODELAY"] = "1" if label.endswith("nodelay") else "0"
    return launch(label, command, port, full_env, logdir, root, timeout)


def launch(label: str, command: list[str], port: int, env: dict[str, str], logdir: Path, root: Path,
           timeout: float = 60, ready_path: str = "/api/status") -> ServerProc:
    """Run a server command listening on ``port``, its output in ``logdir/<label>.log``; wait until
    ``ready_path`` answers 200."""
    logdir.mkdir(parents=True, exist_ok=True)
    log = logdir / f"{label}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=root)
    server = ServerProc(label, f"http://127.0.0.1:{port}", proc, log)
    deadline = time.monotonic() + timeout
    with httpx.Client(headers=server.headers, timeout=5) as client:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{label} exited with {proc.returncode}; log:\n{log.read_text()[-3000:]}")
            try:
                if client.get(server.url + ready_path).status_code == 200:
                    return server
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"{label} did not answer {ready_path} within {timeout} s; log in {log}")
            time.sleep(0.05)
