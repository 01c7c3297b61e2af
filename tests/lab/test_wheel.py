"""carme + carme-lab from their wheels in a clean venv: no tornado, traitlets (beyond what
jupyter_core itself needs), jupyter_server or jupyter_client, and `carme serve` shows /lab."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = ("tornado", "jupyter_server", "jupyter_client", "jupyterlab", "jupyterlab_server", "notebook")

CHECK = """
import importlib.metadata as md, importlib.util, json, sys
forbidden = sys.argv[1].split(",")
found = {name: importlib.util.find_spec(name) is not None for name in forbidden + ["traitlets"]}
needs_traitlets = sorted({d.metadata["Name"] for d in md.distributions()
                          if any(r.split(";")[0].strip().lower().startswith("traitlets") and "extra ==" not in r
                                 for r in (d.requires or []))})
import carme_lab.plugin, carme
print(json.dumps({"found": found, "needs_traitlets": needs_traitlets}))
"""


def _uv() -> str:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is needed to build the wheels and make the venv (it is the project's installer)")
    return uv


def _run(*args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_clean_venv_from_wheels(tmp_path: Path, root: Path) -> None:
    uv = _uv()
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    dist = tmp_path / "dist"
    for package in ("carme", "carme-lab"):
        _run(uv, "build", "--quiet", "--wheel", "--package", package, "-o", str(dist), str(REPO), env=env)
    wheels = sorted(str(p) for p in dist.glob("*.whl"))
    assert len(wheels) == 2, wheels
    venv = tmp_path / "venv"
    _run(uv, "venv", "--quiet", "--python", sys.executable, str(venv), env=env)
    python = str(venv / "bin" / "python")
    _run(uv, "pip", "install", "--quiet", "--python", python, *wheels, env=env)

    report = json.loads(_run(python, "-c", CHECK, ",".join(FORBIDDEN)))
    assert not any(report["found"][name] for name in FORBIDDEN), report
    # traitlets comes in only because jupyter_core (Jupyter's path functions) and nbformat require
    # it; nothing that carme or carme-lab brings in asks for it.
    assert set(report["needs_traitlets"]) <= {"jupyter_core", "nbformat"}, report
    assert (venv / "share" / "jupyter" / "lab" / "static" / "index.html").is_file()

    port = _free_port()
    server = subprocess.Popen([str(venv / "bin" / "carme"), "serve", str(root), "--port", str(port),
                               "--no-browser", "--token", "wheel-token"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            while True:
                try:
                    response = client.get("/lab", params={"token": "wheel-token"})
                    break
                except httpx.TransportError:
                    assert server.poll() is None, server.stdout.read() if server.stdout else ""
                    assert time.monotonic() < deadline, "carme serve did not answer within 60 s"
                    time.sleep(0.1)
            assert response.status_code == 200
            assert '"appVersion": "4.6.5"' in response.text
            assert client.get("/static/lab/main.580360276a959490.js").status_code == 200
            assert client.get("/", follow_redirects=False).headers["location"] == "/lab"
    finally:
        server.terminate()
        try:
            output, _ = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            output, _ = server.communicate()
    assert "/lab?token=wheel-token" in output  # `carme serve` points the user at /lab
