"""A real JupyterHub for tests: its own throwaway venv (JupyterHub and jupyterhub-idle-culler have
dependencies carme's environment must not get) and configurable-http-proxy from npm, both made
here with uv and npm on first use, under tests/hub/.hub-env/ (git-ignored), so a fresh machine
needs nothing installed beforehand. The hub runs on 127.0.0.1 with the dummy authenticator and
the simple local-process spawner, whose command is ``carme singleuser``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.servers import INSTALLED, ensure_venv
from tests.polling import wait_until
from tests.processes import Process, descendants, end_leftovers

ENV_DIR = Path(__file__).resolve().parent / ".hub-env"
# Pinned: the versions the reference notes describe (shared/reference, JupyterHub single-user).
HUB_REQUIREMENTS = ["jupyterhub==6.1.1", "jupyterhub-idle-culler==2.0.0"]
CHP_PACKAGE = "configurable-http-proxy@5.3.0"
SERVICE_TOKEN = "carme-hub-tests-service-token"
CARME = str(Path(sys.executable).parent / "carme")


def ensure_hub_env(env_dir: Path = ENV_DIR, requirements: Sequence[str] = HUB_REQUIREMENTS) -> tuple[Path, Path]:
    """The hub venv's python and the configurable-http-proxy program, installed when missing or
    when what they were installed from changed (``requirements`` into the venv: the bench adds
    jupyterhub-singleuser's jupyter_server and JupyterLab)."""
    chp_dir = env_dir / "chp"
    python = ensure_venv(env_dir / "venv", requirements)
    chp = chp_dir / "node_modules" / ".bin" / "configurable-http-proxy"
    record = chp_dir / INSTALLED  # as ensure_venv's: a changed pin installs again
    if not chp.exists() or not record.exists() or record.read_text() != CHP_PACKAGE:
        chp_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", str(chp_dir), "--no-audit", "--no-fund", "--loglevel=error",
                        CHP_PACKAGE], check=True)
        record.write_text(CHP_PACKAGE)
    return python, chp


def auth(token: str) -> dict[str, str]:
    """The header of a request made with a hub token."""
    return {"Authorization": f"token {token}"}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Hub:
    """A running hub: its public URL, its API as the test service, and the users' servers."""

    url: str
    process: Process
    home: Path
    api: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.api = httpx.Client(base_url=self.url + "/hub/api", headers={"Authorization": f"token {SERVICE_TOKEN}"},
                                timeout=60)

    def user(self, name: str) -> dict[str, Any]:
        response = self.api.get(f"/users/{name}")
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    def server_model(self, name: str) -> dict[str, Any] | None:
        return self.user(name)["servers"].get("")  # type: ignore[no-any-return]

    def start_server(self, name: str) -> str:
        """Create ``name`` if needed and start their default server; its URL once the hub says ready."""
        if self.api.get(f"/users/{name}").status_code == 404:
            self.api.post(f"/users/{name}").raise_for_status()
        started = self.api.post(f"/users/{name}/server")
        assert started.status_code in (201, 202, 400), started.text  # 400: already running
        wait_until(lambda: (self.server_model(name) or {}).get("ready"), f"{name}'s server ready", timeout=60)
        return f"{self.url}/user/{name}/"

    def stop_server(self, name: str) -> None:
        """Stop ``name``'s server as the admin page does, and wait until the hub says it is gone."""
        stopped = self.api.delete(f"/users/{name}/server")
        assert stopped.status_code in (202, 204), stopped.text
        wait_until(lambda: self.server_model(name) is None, f"{name}'s server stopped", timeout=90)

    def token(self, name: str) -> str:
        """A new API token of ``name`` (with all of the user's own permissions)."""
        response = self.api.post(f"/users/{name}/tokens", json={"note": "carme tests"})
        response.raise_for_status()
        return response.json()["token"]  # type: ignore[no-any-return]

    def stop(self) -> None:
        """Stop the hub and what it started. JupyterHub runs the proxy and its services in sessions
        of their own and, stopped by SIGTERM, leaves some running (seen: configurable-http-proxy
        and the idle culler after each whole-suite run), which then also hold the hub's log pipe
        open: they are ended here, after the hub."""
        self.api.close()
        started = descendants(self.process.proc.pid)
        self.process.end()
        end_leftovers(started)
        self.process.wait()


def start_hub(home: Path, *, services: Sequence[Mapping[str, Any]] = (), roles: Sequence[Mapping[str, Any]] = (),
              spawner_environment: Mapping[str, str] | None = None, config: str = "",
              env: tuple[Path, Path] | None = None) -> Hub:
    """A hub on 127.0.0.1 with its state in ``home``; ``services`` and ``roles`` added to the test
    service (which may manage users, servers and tokens, and read the spawners' state: a local
    server's pid), ``config`` appended to its config file; ``env`` is what :func:`ensure_hub_env`
    returned (default: the tests' own)."""
    python, chp = env or ensure_hub_env()
    home.mkdir(parents=True, exist_ok=True)
    port, hub_port, proxy_api_port = free_port(), free_port(), free_port()
    all_services = [{"name": "carme-tests", "api_token": SERVICE_TOKEN}, *services]
    all_roles = [{"name": "carme-tests", "services": ["carme-tests"],
                  "scopes": ["admin:users", "admin:servers", "admin:server_state", "tokens", "access:servers",
                             "read:users"]}, *roles]
    (home / "jupyterhub_config.py").write_text(textwrap.dedent(f"""\
        c = get_config()  # noqa
        c.JupyterHub.ip = "127.0.0.1"
        c.JupyterHub.port = {port}
        c.JupyterHub.hub_ip = "127.0.0.1"
        c.JupyterHub.hub_port = {hub_port}
        c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
        c.ConfigurableHTTPProxy.command = [{str(chp)!r}]
        c.ConfigurableHTTPProxy.pid_file = {str(home / "proxy.pid")!r}
        c.JupyterHub.db_url = "sqlite:///{home / "hub.sqlite"}"
        c.JupyterHub.cookie_secret_file = {str(home / "cookie_secret")!r}
        c.JupyterHub.pid_file = {str(home / "hub.pid")!r}
        c.JupyterHub.authenticator_class = "dummy"
        c.Authenticator.allow_all = True
        c.JupyterHub.spawner_class = "simple"
        c.SimpleLocalProcessSpawner.home_dir_template = {str(home / "users" / "{username}")!r}
        c.Spawner.cmd = [{CARME!r}, "singleuser"]
        c.Spawner.default_url = "/lab"
        c.Spawner.environment = {dict(spawner_environment or {})!r}
        c.JupyterHub.services = {all_services!r}
        c.JupyterHub.load_roles = {all_roles!r}
        # Activity comes from the servers' reports alone, not from the proxy's traffic counts.
        c.JupyterHub.last_activity_interval = 3600
        """) + config)
    process = Process([str(python), "-m", "jupyterhub", "-f", str(home / "jupyterhub_config.py")], cwd=home,
                      env={**os.environ, "PATH": f"{python.parent}:{os.environ.get('PATH', '')}"})
    hub = Hub(f"http://127.0.0.1:{port}", process, home)
    try:
        process.wait_for(r"JupyterHub is now running", timeout=90)
    except BaseException:
        hub.stop()
        raise
    return hub
