"""One real JupyterHub for the hub tests (starting one costs seconds; see hubenv.py), and alice's
server on it. The culling tests have a hub of their own: its culler stops every idle server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.hub.hubenv import Hub, start_hub


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A hub whose servers report activity every second (the culler and activity tests see it soon)."""
    running = start_hub(tmp_path_factory.mktemp("hub"), spawner_environment={"JUPYTERHUB_ACTIVITY_INTERVAL": "1"})
    yield running
    running.stop()


@pytest.fixture(scope="session")
def alice(hub: Hub) -> str:
    """alice's running server (its URL under the hub's proxy)."""
    return hub.start_server("alice")
