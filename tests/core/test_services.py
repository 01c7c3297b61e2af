"""The server's states and its services: one way to require a service, a clear error when it is
not there."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from carme import create_app, hookimpl
from carme.server import Server, ServiceUnavailable
from tests.conftest import TOKEN
from tests.serving import serve

AUTH = {"Authorization": f"token {TOKEN}"}


class Records:
    """Records the state the server is in when each lifecycle hook runs."""

    name = "records"

    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    def carme_startup(self, server: Server) -> None:
        self.seen.append(f"startup while {server.state}")
        server.services["records"] = self

    @hookimpl
    def carme_shutdown(self, server: Server) -> None:
        self.seen.append(f"shutdown while {server.state}")


def test_a_service_used_before_start_up_says_so(root: Path) -> None:
    app = create_app(str(root), token=TOKEN, extensions=[])
    server = app.server
    assert server.state == "created" and not server.running
    with pytest.raises(ServiceUnavailable) as raised:
        server.kernels  # noqa: B018
    assert str(raised.value).startswith("service 'kernels' is not available yet: the server is created")
    with pytest.raises(ServiceUnavailable, match="service 'watch' is not available yet"):
        server.services["watch"]
    # Published while the app is assembled: there already.
    assert server.events is server.services["events"]
    assert server.services.get("kernels") is None


def test_states_through_a_served_lifetime_and_a_second_one(root: Path) -> None:
    records = Records()
    app = create_app(str(root), token=TOKEN, plugins=[records], extensions=[])
    for _ in range(2):
        with serve(app) as served:
            assert app.server.state == "running"
            assert app.server.services["records"] is records
            assert httpx.get(served.url + "/api/status", headers=AUTH).json()["kernels"] == 0
        assert app.server.state == "stopped"
    assert records.seen == ["startup while starting", "shutdown while stopping"] * 2


def test_a_service_nobody_publishes_names_what_is_published(root: Path) -> None:
    app = create_app(str(root), token=TOKEN, extensions=[])
    with serve(app):
        with pytest.raises(ServiceUnavailable) as raised:
            app.server.services["watch"]
    message = str(raised.value)
    assert message.startswith("no plugin has published the service 'watch' (the server is running; published: ")
    assert "kernels" in message and message.endswith("is the extension that provides it enabled?")


def test_only_a_running_server_stops_and_a_running_one_does_not_start_again(root: Path) -> None:
    import asyncio

    records = Records()
    app = create_app(str(root), token=TOKEN, plugins=[records], extensions=[])
    asyncio.run(app.server.stop())
    assert records.seen == [] and app.server.state == "created"
    with serve(app):
        with pytest.raises(RuntimeError, match="cannot start a server that is running"):
            asyncio.run(app.server.start())
