"""jupyterhub-idle-culler culls an idle carme server, and its kernels go with it. This hub has
its own culler, which stops every idle server on it: the other hub tests must not share it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.hub.hubenv import Hub, auth, ensure_hub_env, start_hub
from tests.polling import wait_until
from tests.processes import kernel_processes, pid_alive

# The first hub test installs JupyterHub and configurable-http-proxy (tests/hub/hubenv.py).
pytestmark = pytest.mark.timeout(300)

IDLE_SECONDS = 3


@pytest.fixture(scope="module")
def culled_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    python, _chp = ensure_hub_env()
    culler = {"name": "idle-culler",
              "command": [str(python), "-m", "jupyterhub_idle_culler", f"--timeout={IDLE_SECONDS}", "--cull-every=1"]}
    role = {"name": "idle-culler", "services": ["idle-culler"],
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]}
    running = start_hub(tmp_path_factory.mktemp("culled-hub"), services=[culler], roles=[role],
                        spawner_environment={"JUPYTERHUB_ACTIVITY_INTERVAL": "1"})
    yield running
    running.stop()


def test_the_idle_culler_culls_an_idle_server_and_its_kernels(culled_hub: Hub) -> None:
    url = culled_hub.start_server("dave")
    token = culled_hub.token("dave")
    with httpx.Client(base_url=url, headers=auth(token), timeout=60) as client:
        kernel = client.post("api/kernels", json={"name": "python3"}).json()
        # The kernel's process, found by its command line (the server is asked nothing more).
        [pid] = wait_until(lambda: kernel_processes(kernel["id"]), "the kernel's process")
    assert pid_alive(pid)
    wait_until(lambda: culled_hub.server_model("dave") is None, "dave's idle server culled", timeout=90)
    culled_hub.process.wait_for(r"Culling server dave")
    wait_until(lambda: not pid_alive(pid), "the kernel gone with its server")
