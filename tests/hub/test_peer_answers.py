"""A hub that misbehaves, played by a tiny real app: answers that are not JSON and 4xx answers
other than "not this token" (a 502 naming the hub and its answer, never a 500), a malformed
activity URL (reports off, said at start) and a report that fails in a way nobody foresaw (the
reports go on)."""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from carme import create_app
from carme.jsonutil import isoformat
from carme_hub.activity import ActivityReporter
from carme_hub.service import HubService
from tests.polling import await_until
from tests.serving import serve, serve_here


class TinyHub:
    """The hub's API at ``/hub/api``: its version, a ``/user`` that answers ``user_answer`` (an
    HTML page unless a test sets another), and an activity URL that keeps what it is sent."""

    def __init__(self) -> None:
        self.reports: list[dict[str, object]] = []
        self.user_answer: Response = HTMLResponse("<html><body>Sign in to continue</body></html>")
        self.app = Starlette(routes=[
            Route("/hub/api", self.version), Route("/hub/api/user", self.user),
            Route("/hub/api/users/alice/activity", self.activity, methods=["POST"])])

    async def version(self, request: Request) -> Response:
        return JSONResponse({"version": "5.2.1"}, headers={"X-JupyterHub-Version": "5.2.1"})

    async def user(self, request: Request) -> Response:
        return self.user_answer

    async def activity(self, request: Request) -> Response:
        self.reports.append(await request.json())
        return Response(status_code=204)


def spawned(hub_url: str, **more: str) -> dict[str, str]:
    return {"JUPYTERHUB_API_URL": hub_url + "/hub/api", "JUPYTERHUB_USER": "alice",
            "JUPYTERHUB_ACTIVITY_URL": hub_url + "/hub/api/users/alice/activity", **more}


@pytest.fixture
def server_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "server-token")


@pytest.fixture
def tiny_hub() -> Iterator[tuple[TinyHub, str]]:
    hub = TinyHub()
    with serve(hub.app) as running:
        yield hub, running.url


@pytest.mark.usefixtures("server_token")
def test_a_hub_answer_that_is_not_json_is_a_502_naming_the_hub(root: Path, tiny_hub: tuple[TinyHub, str]) -> None:
    _, hub_url = tiny_hub
    app = create_app(str(root), environ=spawned(hub_url), config_files=False, extensions=["hub"])
    with serve(app) as served:
        response = httpx.get(served.url + "/user/alice/api/contents", headers={"Authorization": "token visitor"})
    assert response.status_code == 502, response.text
    body = response.json()
    assert f"{hub_url}/hub/api" in body["message"] and "GET /user" in body["message"], body
    assert "not JSON (text/html" in body["message"], body
    assert body["reason"] == "Bad Gateway"


@pytest.mark.usefixtures("server_token")
@pytest.mark.parametrize(("status", "said"), [
    (404, '{"status":404,"message":"Not Found"}'),  # an API URL that is not the hub's
    (400, '{"status":400,"message":"Bad request"}'),
    (429, "Too Many Requests"),
])
def test_an_unexpected_4xx_from_the_hub_is_a_502_naming_its_answer(
        root: Path, tiny_hub: tuple[TinyHub, str], status: int, said: str) -> None:
    hub, hub_url = tiny_hub
    hub.user_answer = Response(said, status_code=status)
    app = create_app(str(root), environ=spawned(hub_url), config_files=False, extensions=["hub"])
    with serve(app) as served:
        response = httpx.get(served.url + "/user/alice/api/contents", headers={"Authorization": "token visitor"})
    assert response.status_code == 502, response.text
    body = response.json()
    assert f"{hub_url}/hub/api answered {status} to GET /user" in body["message"], body
    assert said in body["message"], body
    assert body["reason"] == "Bad Gateway"


@pytest.mark.usefixtures("server_token")
def test_a_hub_that_went_away_is_a_503_naming_it(root: Path) -> None:
    hub = TinyHub()
    with contextlib.ExitStack() as hub_running:
        running = hub_running.enter_context(serve(hub.app))  # the hub answers while the server starts
        app = create_app(str(root), environ=spawned(running.url), config_files=False, extensions=["hub"])
        with serve(app) as served:
            reached = httpx.get(served.url + "/user/alice/api/contents", headers={"Authorization": "token t"})
            assert reached.status_code == 502  # the tiny hub's HTML answer: it was reached
            hub_running.close()
            # The hub is gone; its port is held by a socket that does not listen: connecting is refused.
            with socket.socket() as hole:
                hole.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the hub's closed connections linger
                hole.bind(("127.0.0.1", running.port))
                response = httpx.get(served.url + "/user/alice/api/contents",
                                     headers={"Authorization": "token visitor"})
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["reason"] == "Hub unreachable"
    assert body["message"].startswith(f"The hub API at {running.url}/hub/api cannot be reached ("), body
    assert body["message"].endswith("is the hub running? Try again when it is back"), body


@pytest.mark.usefixtures("server_token")
@pytest.mark.parametrize(("url", "problem"), [
    ("http://hub:port/hub/api/users/alice/activity", "is malformed: Invalid port"),
    ("http://127.0.0.1:99999/hub/api/users/alice/activity", "port 99999, out of range"),
    ("hub/api/users/alice/activity", "not an http:// or https:// URL"),
    ("http:///hub/api/users/alice/activity", "names no host"),
])
async def test_a_malformed_activity_url_turns_reports_off_with_a_warning(
        root: Path, caplog: pytest.LogCaptureFixture, url: str, problem: str) -> None:
    app = create_app(str(root), environ=spawned("http://127.0.0.1:8081", JUPYTERHUB_ACTIVITY_URL=url),
                     config_files=False)
    hub = HubService(app.server)
    reporter = ActivityReporter(app.server, hub)
    try:
        with caplog.at_level(logging.WARNING, "carme.hub.activity"):
            reporter.start()
        assert not reporter.running
        warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("JUPYTERHUB_ACTIVITY_URL" in m and url in m and problem in m for m in warned), warned
    finally:
        await reporter.stop()
        await hub.client.close()


@pytest.mark.usefixtures("server_token")
async def test_a_report_that_fails_unforeseen_does_not_end_the_reports(
        root: Path, caplog: pytest.LogCaptureFixture) -> None:
    tiny = TinyHub()
    async with serve_here(tiny.app) as running:
        app = create_app(str(root), environ=spawned(running.url, JUPYTERHUB_ACTIVITY_INTERVAL="1"),
                         config_files=False)
        hub = HubService(app.server)
        reporter = ActivityReporter(app.server, hub)
        good_url = hub.activity_url
        try:
            reporter.start()
            await await_until(lambda: len(tiny.reports), "the first activity report")
            # The URL goes bad under the running reporter (httpx fails it with no OSError) while
            # there is news to report.
            hub.activity_url = "http://127.0.0.1:99999/hub/api/users/alice/activity"
            app.server.last_activity = datetime.now(UTC) + timedelta(seconds=1)
            with caplog.at_level(logging.ERROR, "carme.hub.activity"):
                await await_until(lambda: [r for r in caplog.records if r.levelno >= logging.ERROR],
                                  "the failed report logged")
            assert reporter.running
            hub.activity_url = good_url
            await await_until(lambda: len(tiny.reports) >= 2, "a report after the failed one")
            assert tiny.reports[-1]["last_activity"] == isoformat(app.server.last_activity)
        finally:
            await reporter.stop()
            await hub.client.close()
