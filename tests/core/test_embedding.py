"""Embedding: create_app's arguments, two apps in one process, carme mounted under a prefix
inside another Starlette app (REST, websockets, login redirects, cookie paths), base_url."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import httpx
import pytest
import websockets.sync.client as ws_client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route

from carme import create_app
from tests.serving import serve

EVENT = {"schema_id": "https://events.jupyter.org/jupyter_server/contents_service/v1", "version": 1,
         "data": {"action": "save", "path": "a.txt"}}


def host_app(carme_app: Starlette, prefix: str = "/carme", lifespan: bool = True) -> Starlette:
    async def home(request: Request) -> Response:
        return PlainTextResponse("host home")

    return Starlette(routes=[Route("/", home), Mount(prefix, app=carme_app)],
                     lifespan=carme_app.lifespan if lifespan else None)  # type: ignore[attr-defined]


def test_two_apps_in_one_process_share_nothing(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = create_app(str(tmp_path / "a"), token="one", extensions=[])
    # The cookie secret is a file (one per Jupyter runtime dir, as jupyter_server's): apps that
    # must not read each other's cookies name their own.
    two = create_app(str(tmp_path / "b"), token="two", extensions=[],
                     settings={"allow_origin": "*", "cookie_secret_file": str(tmp_path / "two-secret")})
    assert one.server is not two.server
    assert one.server.plugins.pm is not two.server.plugins.pm
    assert one.server.events is not two.server.events
    assert (one.server.root_dir.name, two.server.root_dir.name) == ("a", "b")
    assert (one.server.settings["allow_origin"], two.server.settings["allow_origin"]) == ("", "*")
    assert one.server.auth.secret != two.server.auth.secret
    with serve(one) as s1, serve(two) as s2:
        assert httpx.get(s1.url + "/api/status", headers={"Authorization": "token two"}).status_code == 403
        assert httpx.get(s2.url + "/api/status", headers={"Authorization": "token two"}).status_code == 200
        with ws_client.connect(s1.ws_url + "/api/events/subscribe?token=one") as ws1, \
                ws_client.connect(s2.ws_url + "/api/events/subscribe?token=two") as ws2:
            assert httpx.post(s2.url + "/api/events", json=EVENT, headers={"Authorization": "token two"}).status_code == 204
            assert json.loads(ws2.recv(timeout=10))["path"] == "a.txt"
            ws1.ping().wait(10)
            with pytest.raises(TimeoutError):
                ws1.recv(timeout=0.2)  # nothing crossed over (a bounded wait for an absence)
        # Stopping one leaves the other running.
    assert not one.server.running and not two.server.running


def test_mounted_under_a_prefix(root: Path) -> None:
    carme_app = create_app(str(root), token="t", extensions=[])
    with serve(host_app(carme_app)) as served, httpx.Client(base_url=served.url) as browser:
        assert browser.get("/").text == "host home"
        assert browser.get("/carme/api").json()["version"].startswith("2.")
        assert browser.get("/carme/api/status").status_code == 403
        # A page without credentials goes to carme's login under the prefix.
        page = browser.get("/carme/lab", headers={"Accept": "text/html"})
        assert page.headers["location"] == "/carme/login?next=%2Fcarme%2Flab"
        form = browser.get("/carme/login", params={"next": "/carme/api/me"})
        assert 'action="/carme/login"' in form.text
        xsrf_cookie = [c for c in form.headers.get_list("set-cookie") if c.startswith("_xsrf=")][0]
        assert "Path=/carme/" in xsrf_cookie
        done = browser.post("/carme/login", data={"password": "t", "_xsrf": browser.cookies["_xsrf"],
                                                  "next": "/carme/api/me"})
        assert done.headers["location"] == "/carme/api/me"
        login_cookie = [c for c in done.headers.get_list("set-cookie") if c.startswith("username-")][0]
        assert "Path=/carme/" in login_cookie
        assert browser.get("/carme/api/me").status_code == 200
        # Cookie-authenticated websocket under the prefix.
        cookies = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
        with ws_client.connect(served.ws_url + "/carme/api/events/subscribe", origin=served.url,  # type: ignore[arg-type]
                               additional_headers={"Cookie": cookies}) as ws:
            answer = browser.post("/carme/api/events", json=EVENT, headers={"X-XSRFToken": browser.cookies["_xsrf"]})
            assert answer.status_code == 204
            assert json.loads(ws.recv(timeout=10))["schema_id"] == EVENT["schema_id"]
        logout = browser.get("/carme/logout")
        assert logout.headers["location"] == "/carme/login"
        assert browser.get("/carme/api/me").status_code == 403


def test_mounted_with_a_base_url_too(root: Path) -> None:
    carme_app = create_app(str(root), token="t", base_url="/user/ada/", extensions=[])
    with serve(host_app(carme_app, "/hub")) as served:
        auth = {"Authorization": "token t"}
        assert httpx.get(served.url + "/hub/user/ada/api/status", headers=auth).status_code == 200
        assert httpx.get(served.url + "/hub/api/status", headers=auth).status_code == 404
        page = httpx.get(served.url + "/hub/user/ada/lab", headers={"Accept": "text/html"})
        assert page.headers["location"] == "/hub/user/ada/login?next=%2Fhub%2Fuser%2Fada%2Flab"
        with ws_client.connect(served.ws_url + "/hub/user/ada/api/events/subscribe?token=t") as ws:
            ws.ping().wait(10)


def test_base_url(root: Path) -> None:
    with serve(create_app(str(root), token="t", base_url="prefix", extensions=[])) as served:
        assert httpx.get(served.url + "/prefix/api/status?token=t").status_code == 200
        assert httpx.get(served.url + "/api/status?token=t").status_code == 404
        cookie = httpx.get(served.url + "/prefix/api/status?token=t").headers.get_list("set-cookie")
        assert any(c.startswith("username-") and "Path=/prefix/" in c for c in cookie)


def test_mounted_without_lifespan_starts_on_first_request(root: Path, caplog: pytest.LogCaptureFixture) -> None:
    carme_app = create_app(str(root), token="t", extensions=[])
    with caplog.at_level(logging.WARNING, "carme.app"), serve(host_app(carme_app, lifespan=False)) as served:
        assert not carme_app.server.running
        assert httpx.get(served.url + "/carme/api/status?token=t").status_code == 200
        assert carme_app.server.running
    assert "mounted without its lifespan" in caplog.text
    asyncio.run(carme_app.server.stop())  # what the host should have let the lifespan do


def test_create_app_arguments(root: Path) -> None:
    app = create_app(str(root), token="tok", base_url="/x/", extensions={}, settings={"allow_origin": "https://a.b"})
    settings = app.server.settings
    assert (settings["token"], settings["base_url"], settings["allow_origin"]) == ("tok", "/x/", "https://a.b")
    assert app.server.root_dir == root.resolve()
    assert not create_app(str(root), auth=False, extensions=[]).server.auth.enabled
