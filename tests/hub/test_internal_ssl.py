"""carme under a real JupyterHub with ``internal_ssl``: the hub makes a certificate for the server
and passes it in ``JUPYTERHUB_SSL_KEYFILE``/``_CERTFILE``/``_CLIENT_CA``; carme serves HTTPS with
it, refuses clients without a certificate the hub's CA signed (the proxy and the hub show theirs),
and shows its own when it calls the hub's API (the hub refuses calls without one)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.hub.hubenv import Hub, auth, start_hub

# The first hub test installs JupyterHub and configurable-http-proxy (tests/hub/hubenv.py).
pytestmark = pytest.mark.timeout(300)

INTERNAL_SSL = """
from jupyterhub.spawner import SimpleLocalProcessSpawner, Spawner


class CertsInPlaceSpawner(SimpleLocalProcessSpawner):
    # The local spawner hands the certificates to the user's system account; these users have
    # none, so they stay where the hub made them.
    async def move_certs(self, paths):
        return await Spawner.move_certs(self, paths)


c.JupyterHub.spawner_class = CertsInPlaceSpawner
c.JupyterHub.internal_ssl = True
c.JupyterHub.internal_certs_location = {certs!r}
# The proxy's API is internal too: HTTPS with the hub's certificates.
c.ConfigurableHTTPProxy.api_url = c.ConfigurableHTTPProxy.api_url.replace("http://", "https://")
"""


@pytest.fixture(scope="module")
def ssl_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    home = tmp_path_factory.mktemp("ssl-hub")
    hub = start_hub(home, config=INTERNAL_SSL.format(certs=str(home / "internal-ssl")))
    yield hub
    hub.stop()


def spawned_environment(pid: int) -> dict[str, str]:
    """The environment the hub's spawner gave the server process ``pid``."""
    items = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in items if b"=" in item)


def test_internal_ssl_both_ways(ssl_hub: Hub) -> None:
    alice = ssl_hub.start_server("alice")  # ready: the hub reached carme over HTTPS with its certificate
    token = ssl_hub.token("alice")
    # Through the proxy (which talks HTTPS to carme with its client certificate); carme asks the
    # hub who the token is over HTTPS, showing its own certificate.
    me = httpx.get(alice + "api/me", headers=auth(token), timeout=60)
    assert me.status_code == 200, me.text
    assert me.json()["identity"]["username"] == "alice"

    env = spawned_environment(int(ssl_hub.server_model("alice")["state"]["pid"]))  # type: ignore[index]
    service_url = env["JUPYTERHUB_SERVICE_URL"]
    assert service_url.startswith("https://127.0.0.1:"), service_url
    # carme itself: HTTPS with the hub's certificate for it (checked as the hub checks it), and
    # no answer to a client that shows no certificate ...
    certs = ssl_hub.home / "internal-ssl"
    trusting = ssl.create_default_context(cafile=certs / "hub-ca_trust.crt")
    with pytest.raises(httpx.TransportError):
        httpx.get(service_url + "api", verify=trusting, timeout=30)
    # ... while the hub's own gets in.
    showing = ssl.create_default_context(cafile=certs / "hub-ca_trust.crt")
    showing.load_cert_chain(certs / "hub-internal" / "hub-internal.crt", certs / "hub-internal" / "hub-internal.key")
    assert httpx.get(service_url + "api", verify=showing, timeout=30).status_code == 200
