"""A real Jupyter Enterprise Gateway on 127.0.0.1 for the tests, run from a throwaway venv of its
own (``bench/.anchor-gateway-venv``, made with uv on first use, shared with bench/): EG pins its
own jupyter_server (1.x) and jupyter_client, which must never enter carme's environment.

It launches local ipykernel kernels (its venv has ipykernel and ipywidgets), in an isolated Jupyter
environment; :meth:`EnterpriseGateway.kill` crashes it (its kernels with it, as pods are lost when a
real gateway restarts) and :meth:`EnterpriseGateway.start` brings it back on the same port.
"""

from __future__ import annotations

import contextlib
import os
import signal
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench.servers import GATEWAY_REQUIREMENTS, GATEWAY_VENV, ensure_anchor, free_port
from tests.environment import isolated_environ
from tests.polling import wait_until

USER = "carme-test"  # KERNEL_USERNAME: EG refuses kernels for root, which CI runs as
START_S = 60.0


def children(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (the kernels EG launched in sessions of their own)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


class EnterpriseGateway:
    """One EG process (restartable on its port); ``url`` is its base URL."""

    def __init__(self, home: Path, env: dict[str, str] | None = None) -> None:
        self.python = ensure_anchor(GATEWAY_VENV, GATEWAY_REQUIREMENTS)
        self.home = home
        self.port = free_port()
        self.extra_env = env or {}
        # TLS when its environment names a certificate (EG_CERTFILE): then trust that certificate.
        self.certificate = self.extra_env.get("EG_CERTFILE")
        self.verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=self.certificate) \
            if self.certificate else True
        self.url = f"{'https' if 'EG_CERTFILE' in self.extra_env else 'http'}://127.0.0.1:{self.port}"
        token = self.extra_env.get("EG_AUTH_TOKEN")
        self.headers = {"Authorization": f"token {token}"} if token else {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        """Start it and wait until it answers /api."""
        self.starts += 1
        log = (self.home / f"eg-{self.starts}.log").open("wb")
        env = {**isolated_environ(self.home), "EG_KERNEL_LAUNCH_TIMEOUT": "60", **self.extra_env}
        command = [str(self.python.parent / "jupyter-enterprisegateway"), "--ip=127.0.0.1", f"--port={self.port}",
                   "--port_retries=0", "--log-level=WARN"]
        with log:
            self.proc = subprocess.Popen(command, cwd=self.home, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)

        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"the gateway exited: {(self.home / f'eg-{self.starts}.log').read_text()[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                return httpx.get(f"{self.url}/api", headers=self.headers, verify=self.verify,
                                 timeout=5).status_code == 200
            return False

        try:
            wait_until(up, "Enterprise Gateway to answer /api", timeout=START_S, interval=0.1)
        except BaseException:
            self.kill()
            raise

    def kill(self) -> None:
        """Crash it (SIGKILL) and its kernels with it: it comes back knowing none of them."""
        if self.proc is None or self.proc.poll() is not None:
            return
        kernels = children(self.proc.pid)
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        for pid in kernels:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)

    def stop(self) -> None:
        """Stop it politely (it shuts its kernels down); SIGKILL if that takes too long."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()

    def kernel(self, kernel_id: str) -> httpx.Response:
        """The gateway's own answer about a kernel (200 with its model, or 404)."""
        return httpx.get(f"{self.url}/api/kernels/{kernel_id}", headers=self.headers, verify=self.verify, timeout=10)


@contextlib.contextmanager
def running_gateway(home: Path, env: dict[str, str] | None = None) -> Iterator[EnterpriseGateway]:
    """An Enterprise Gateway started in ``home`` (``env``: more of its environment) for the block,
    stopped after it."""
    gateway = EnterpriseGateway(home, env)
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (openssl), valid for a day: (cert, key)."""
    cert, key = folder / "gateway-cert.pem", folder / "gateway-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key
