"""A user who may read but not execute on kernels watches a kernel; comm messages follow the
``read_only_comms`` setting (widgets can be shown read-only, or driven)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import HTTPConnection

from carme import create_app, hookimpl
from carme.auth import User
from carme.authorization import DENIED_SCHEMA
from tests.conftest import TOKEN
from tests.kernels.wsclient import Client
from tests.serving import Served, serve

pytestmark = pytest.mark.asyncio(loop_scope="function")


class Watchers:
    """X-Test-User names the user; "viewer" only reads."""

    name = "watchers"

    @hookimpl
    def carme_user_from_connection(self, connection: HTTPConnection) -> User | None:
        name = connection.headers.get("x-test-user")
        return User(name) if name else None

    @hookimpl
    def carme_permission(self, user: User, action: str) -> bool | None:
        return False if user.username == "viewer" and action != "read" else None


@pytest.fixture(params=[False, True], ids=["comms-off", "comms-on"])
def served(root: Path, request: pytest.FixtureRequest) -> Iterator[Served]:
    app = create_app(str(root), token=TOKEN, extensions=[], config_files=False, plugins=[Watchers()],
                     settings={"read_only_comms": request.param})
    with serve(app) as running:
        yield running


async def test_comms_follow_the_setting(served: Served) -> None:
    kernel = httpx.post(served.url + "/api/kernels", json={"name": "python3"},
                        headers={"Authorization": f"token {TOKEN}"}, timeout=60).json()["id"]
    viewer = await Client.open(served.ws_url, kernel, headers={"X-Test-User": "viewer"})
    try:
        # ipykernel answers a comm_open for a target it does not know with a comm_close.
        await viewer.send("shell", "comm_open", {"comm_id": "c0ffee", "target_name": "no-such-target", "data": {}})
        probe = await viewer.send("shell", "kernel_info_request", {})
        seen: list[Any] = await viewer.until(lambda m: m.msg_type == "status" and m.parent_id == probe
                                             and m.content["execution_state"] == "idle")
        closed = [m for m in seen if m.msg_type == "comm_close" and m.content["comm_id"] == "c0ffee"]
        assert bool(closed) is served.app.server.settings["read_only_comms"]
        # Never code, whatever the setting; each kind of refused message is published for audit.
        denials: list[dict[str, Any]] = []
        served.app.server.events.add_listener(lambda event: denials.append(event)
                                              if event["schema_id"] == DENIED_SCHEMA else None)
        _, reply = await viewer.execute("1")
        assert (reply.content["status"], reply.content["ename"]) == ("error", "PermissionError")
        assert [(d["username"], d["action"], d["resource"], d["plugin"], d["detail"]) for d in denials] == [
            ("viewer", "execute", "kernels", "watchers", f"execute_request refused on kernel {kernel}")]
    finally:
        await viewer.close()
