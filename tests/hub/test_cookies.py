"""The hub's login cookie through a real JupyterHub: it outlives a restart of the carme server,
and carries the cookie options the hub passes (its ``tornado_settings["cookie_options"]``, which
it hands its spawners as JUPYTERHUB_COOKIE_OPTIONS).

The restarted server here is one the test starts and restarts itself, as a hub service (the hub's OAuth
client of a service lives as long as the hub's config, as a server's does while the hub thinks
it runs), so the restart is a new process with the same environment, as a container restarted
by its orchestrator is; a hub-stopped server's OAuth client and tokens go with it.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.environment import isolated_environ
from tests.hub.hubenv import CARME, Hub, free_port, start_hub
from tests.polling import wait_until
from tests.processes import Process, only

# The first hub test installs JupyterHub and configurable-http-proxy (tests/hub/hubenv.py).
pytestmark = pytest.mark.timeout(300)

SERVICE = "carme-restart"
# The hub hands these to its spawned servers in JUPYTERHUB_COOKIE_OPTIONS.
COOKIE_OPTIONS = {"samesite": "Strict", "expires_days": 2}
SERVICE_TOKEN = "carme-restart-service-token"
PREFIX = f"/services/{SERVICE}/"


class ServiceServer:
    """``carme singleuser`` as the hub service ``SERVICE``, started and restarted by the test."""

    def __init__(self, hub: Hub, home: Path, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.home = home
        self.env = {**isolated_environ(home), "JUPYTERHUB_API_URL": hub.url + "/hub/api",
                    "JUPYTERHUB_API_TOKEN": SERVICE_TOKEN, "JUPYTERHUB_SERVICE_URL": self.url,
                    "JUPYTERHUB_SERVICE_PREFIX": PREFIX, "JUPYTERHUB_CLIENT_ID": f"service-{SERVICE}",
                    "JUPYTERHUB_OAUTH_CALLBACK_URL": PREFIX + "oauth_callback",
                    "JUPYTERHUB_OAUTH_ACCESS_SCOPES": json.dumps([f"access:services!service={SERVICE}"])}
        self.process: Process | None = None

    def start(self) -> None:
        (self.home / "root").mkdir(exist_ok=True)
        self.process = Process([CARME, "singleuser", *only("hub")], cwd=self.home / "root", env=self.env)
        wait_until(self._answers, "the service server answering", timeout=60)

    def _answers(self) -> bool:
        assert self.process is not None and self.process.proc.poll() is None, self.process and self.process.output()
        try:
            return httpx.get(self.url + PREFIX + "api").status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


@pytest.fixture(scope="module")
def service_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hub, ServiceServer]]:
    home = tmp_path_factory.mktemp("restart-hub")
    port = free_port()
    hub = start_hub(home / "hub", services=[{"name": SERVICE, "url": f"http://127.0.0.1:{port}",
                                             "api_token": SERVICE_TOKEN, "oauth_no_confirm": True}],
                    roles=[{"name": "user", "scopes": ["self", f"access:services!service={SERVICE}"]}],
                    config=f"c.JupyterHub.tornado_settings = {{'cookie_options': {COOKIE_OPTIONS!r}}}\n")
    server = ServiceServer(hub, home / "server", port)
    try:
        server.start()
        yield hub, server
    finally:
        server.stop()
        hub.stop()


def hub_login(hub: Hub, client: httpx.Client, name: str) -> None:
    """Log ``name`` in at the hub's login form, as a browser does (the form's _xsrf echoed)."""
    assert client.get(hub.url + "/hub/login").status_code == 200
    xsrf = client.cookies.get("_xsrf", path="/hub/")
    done = client.post(hub.url + "/hub/login", data={"username": name, "password": "anything", "_xsrf": xsrf},
                       follow_redirects=False)
    assert done.status_code == 302, done.text


def test_a_login_outlives_a_server_restart(service_hub: tuple[Hub, ServiceServer]) -> None:
    hub, server = service_hub
    with httpx.Client(timeout=60, follow_redirects=True) as browser:
        hub_login(hub, browser, "alice")
        # Through the proxy, as the browser goes: the server's login, the hub's authorize page
        # (no confirmation for a service), the callback that sets the OAuth cookie, and back.
        landed = browser.get(f"{hub.url}{PREFIX}oauth_login", params={"next": PREFIX + "api/contents"})
        assert landed.status_code == 200, landed.text
        assert landed.url.path == PREFIX + "api/contents"
        assert browser.cookies.get(f"service-{SERVICE}", path=PREFIX)
        assert browser.get(f"{hub.url}{PREFIX}api/me").json()["identity"]["username"] == "alice"

        server.stop()
        server.start()
        # The same cookie, no new login: the server signs with the secret it kept.
        again = browser.get(f"{hub.url}{PREFIX}api/me", follow_redirects=False)
        assert again.status_code == 200, again.text
        assert again.json()["identity"]["username"] == "alice"

    secret_file = server.home / "runtime" / "carme_cookie_secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    # A forged cookie still does not pass (the kept secret is a secret, not a formality).
    forged = httpx.get(f"{hub.url}{PREFIX}api/me", cookies={f"service-{SERVICE}": "dG9rZW4.00"})
    assert forged.status_code == 403


def test_the_hubs_cookie_options_are_honoured(service_hub: tuple[Hub, ServiceServer]) -> None:
    """As jupyterhub-singleuser: every option on the OAuth cookie; on the state cookie the
    options other than its own path, HttpOnly, Secure and ten-minute lifetime."""
    hub, _ = service_hub
    alice = hub.start_server("alice")  # spawned by the hub, with JUPYTERHUB_COOKIE_OPTIONS
    with httpx.Client(timeout=60) as browser:
        hub_login(hub, browser, "alice")
        to_hub = browser.get(alice + "oauth_login", params={"next": "/user/alice/api/contents"})
        assert to_hub.status_code == 302, to_hub.text
        state = to_hub.headers["set-cookie"]
        assert "SameSite=Strict" in state and "Max-Age=600" in state and "Path=/user/alice/" in state, state
        assert "Lax" not in state and "172800" not in state, state
        authorized = browser.get(to_hub.url.join(to_hub.headers["location"]))  # no prompt: her own server
        assert authorized.status_code == 302, authorized.text
        callback = browser.get(authorized.url.join(authorized.headers["location"]))
        assert (callback.status_code, callback.headers["location"]) == (302, "/user/alice/api/contents"), callback.text
        set_cookies = callback.headers.get_list("set-cookie")
        [login] = [c for c in set_cookies if c.startswith("jupyterhub-user-alice=")]
        [cleared] = [c for c in set_cookies if c.startswith("jupyterhub-user-alice-oauth-state-")]
        assert {"Path=/user/alice/", "HttpOnly", "SameSite=Strict", "Max-Age=172800"} <= set(login.split("; ")), login
        assert "Lax" not in login
        assert "Max-Age=0" in cleared and "SameSite=Strict" in cleared, cleared
        # The cookie so set is the login: alice is herself on her server.
        me = browser.get(alice + "api/me")
        assert me.status_code == 200 and me.json()["identity"]["username"] == "alice"
        # Logging out clears it under the same attributes.
        logout = browser.get(alice + "logout")
        gone = [c for c in logout.headers.get_list("set-cookie") if c.startswith("jupyterhub-user-alice=;")]
        assert gone and "Max-Age=0" in gone[0] and "172800" not in gone[0], logout.headers
