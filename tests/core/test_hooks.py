"""One test per hookspec of carme.hooks (test_hook_<name>), through create_app and a real
uvicorn; the contract test (test_hooks_contract.py) checks that none is missing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from carme import create_app, hookimpl
from carme.app import RouteConflictError
from carme.auth import AuthResult, User
from carme.config import Setting
from carme.errors import ApiError
from carme.hooks import hookspec
from carme.server import Server
from tests.serving import AUTH, TOKEN, serve



def text_route(path: str, text: str) -> Route:
    async def endpoint(request: Request) -> Response:
        return PlainTextResponse(text)

    return Route(path, endpoint)


# -- loading ----------------------------------------------------------------------------------


class ThingSpecs:
    @hookspec
    def carme_thing_made(self, thing: str) -> str | None:
        """A hookspec another extension declares."""


class Declares:
    name = "declares"

    @hookimpl
    def carme_register_hookspecs(self) -> list[object]:
        return [ThingSpecs]


class Implements:
    name = "implements"

    @hookimpl
    def carme_thing_made(self, thing: str) -> str:
        return thing.upper()


def test_hook_carme_register_hookspecs(root: Path) -> None:
    # The implementer is registered before the declarer: historic, so order does not matter.
    app = create_app(str(root), plugins=[Implements(), Declares()], extensions=[])
    assert app.server.hook.carme_thing_made(thing="x") == ["X"]
    assert app.server.hook.carme_thing_made.spec is not None


def test_hook_carme_register_settings(root: Path) -> None:
    class Settings:
        name = "tuned"

        @hookimpl
        def carme_register_settings(self) -> list[Setting]:
            return [Setting("depth", int, 3, "How deep")]

    app = create_app(str(root), plugins=[Settings()], extensions=[], settings={"tuned": {"depth": 4}})
    assert app.server.settings.section("tuned") == {"depth": 4}
    assert app.server.settings.specs["tuned.depth"].help == "How deep"


def test_hook_carme_extra_settings(root: Path) -> None:
    class Derived:
        name = "derived"

        @hookimpl
        def carme_register_settings(self) -> list[Setting]:
            return [Setting("where", str, "", "Where from")]

        @hookimpl
        def carme_extra_settings(self, environ: dict[str, str]) -> dict[str, Any] | None:
            if "SPAWNED_AT" not in environ:
                return None
            return {"base_url": environ["SPAWNED_AT"], "derived.where": "spawner", "port": 9001}

    environ = {"SPAWNED_AT": "/user/ann/", "CARME_PORT": "9000"}
    app = create_app(str(root), plugins=[Derived()], extensions=[], config_files=False, environ=environ,
                     settings={"derived.where": "caller"})
    settings = app.server.settings
    # Over CARME_* variables, under create_app's arguments.
    assert (settings["base_url"], settings["port"], settings["derived.where"]) == ("/user/ann/", 9001, "caller")
    assert settings.source("base_url") == "extension settings"
    plain = create_app(str(root), plugins=[Derived()], extensions=[], config_files=False, environ={})
    assert plain.server.settings["base_url"] == "/"


def test_setting_declared_twice_names_the_plugin(root: Path) -> None:
    class Twice:
        name = "twice"

        @hookimpl
        def carme_register_settings(self) -> list[Setting]:
            return [Setting("a", int, 1, "a"), Setting("a", int, 2, "a again")]

    with pytest.raises(Exception, match=r"setting 'twice.a' is declared twice \(by 'twice', then by 'twice'\)"):
        create_app(str(root), plugins=[Twice()], extensions=[])


def test_hook_carme_register_routes(root: Path) -> None:
    class Routes:
        @hookimpl
        def carme_register_routes(self, server: Server) -> list[Route]:
            return [text_route("/ext/hello", "hello")]

    with serve(create_app(str(root), token=TOKEN, plugins=[Routes()], extensions=[])) as served:
        assert httpx.get(served.url + "/ext/hello", headers=AUTH).text == "hello"
        # Behind authentication like every route that is not declared public.
        assert httpx.get(served.url + "/ext/hello").status_code == 403


def test_route_conflict_names_both_plugins(root: Path) -> None:
    class First:
        name = "first"

        @hookimpl
        def carme_register_routes(self, server: Server) -> list[Route]:
            return [text_route("/ext/same", "1")]

    class Second:
        name = "second"

        @hookimpl
        def carme_register_routes(self, server: Server) -> list[Route]:
            return [text_route("/ext/same", "2")]

    with pytest.raises(RouteConflictError) as raised:
        create_app(str(root), plugins=[First(), Second()], extensions=[])
    assert str(raised.value) == "route '/ext/same' is claimed by both 'first' and 'second'; disable one of them"


def test_route_conflict_with_a_core_route(root: Path) -> None:
    class Shadow:
        name = "shadow"

        @hookimpl
        def carme_register_routes(self, server: Server) -> list[Route]:
            return [text_route("/api/status", "mine")]

    with pytest.raises(RouteConflictError, match="'carme.builtins.server' and 'shadow'"):
        create_app(str(root), plugins=[Shadow()], extensions=[])


def test_hook_carme_register_public_paths(root: Path) -> None:
    class Public:
        @hookimpl
        def carme_register_routes(self, server: Server) -> list[Route]:
            return [text_route("/ext/public/logo", "logo"), text_route("/ext/private", "secret")]

        @hookimpl
        def carme_register_public_paths(self, server: Server) -> list[str]:
            return ["/ext/public/"]

    with serve(create_app(str(root), token=TOKEN, plugins=[Public()], extensions=[])) as served:
        assert httpx.get(served.url + "/ext/public/logo").text == "logo"
        assert httpx.get(served.url + "/ext/private").status_code == 403


def test_hook_carme_register_api_paths(root: Path) -> None:
    class Api:
        @hookimpl
        def carme_register_routes(self, server: Server) -> list[Route]:
            return [text_route("/ext/api/things", "things"), text_route("/ext/page", "page")]

        @hookimpl
        def carme_register_api_paths(self, server: Server) -> list[str]:
            return ["/ext/api/"]

    browser = {"Accept": "text/html,*/*"}
    with serve(create_app(str(root), token=TOKEN, plugins=[Api()], extensions=[])) as served:
        refused = httpx.get(served.url + "/ext/api/things", headers=browser)
        assert refused.status_code == 403
        assert refused.json() == {"message": "Forbidden", "reason": None}
        # Not declared: a browser asking for it is sent to log in.
        page = httpx.get(served.url + "/ext/page", headers=browser)
        assert page.status_code == 302 and page.headers["location"] == "/login?next=%2Fext%2Fpage"
        assert httpx.get(served.url + "/ext/api/things", headers={**browser, **AUTH}).text == "things"


class HeaderMiddleware:
    def __init__(self, app: ASGIApp, header: str) -> None:
        self.app = app
        self.header = header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        user = scope.get("user")

        async def send_with(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], (self.header.encode(), user.username.encode())]
            await send(message)

        await self.app(scope, receive, send_with if scope["type"] == "http" else send)


def test_hook_carme_register_middleware(root: Path) -> None:
    class Wraps:
        @hookimpl
        def carme_register_middleware(self, server: Server) -> list[Middleware]:
            return [Middleware(HeaderMiddleware, header="x-who")]

    app = create_app(str(root), token=TOKEN, plugins=[Wraps()], extensions=[])
    with serve(app) as served:
        answer = httpx.get(served.url + "/api/status", headers=AUTH)
    # Inside authentication: the middleware sees the user.
    assert answer.headers["x-who"] == app.server.auth.anonymous.username


# -- lifecycle --------------------------------------------------------------------------------


class Lifecycle:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    @hookimpl
    async def carme_startup(self, server: Server) -> None:
        await asyncio.sleep(0)
        server.services[self.name] = f"{self.name}-service"
        self.log.append(f"start {self.name}")

    @hookimpl
    async def carme_shutdown(self, server: Server) -> None:
        await asyncio.sleep(0)
        self.log.append(f"stop {self.name} (running={server.running})")


def test_hook_carme_startup(root: Path) -> None:
    log: list[str] = []
    app = create_app(str(root), token=TOKEN, plugins=[Lifecycle("a", log), Lifecycle("b", log)], extensions=[])
    assert log == []  # nothing starts at create_app
    with serve(app):
        # Through the ASGI lifespan, before the first request, in registration order.
        assert log == ["start a", "start b"]
        assert (app.server.services["a"], app.server.services["b"]) == ("a-service", "b-service")
        assert app.server.running


def test_hook_carme_shutdown(root: Path) -> None:
    log: list[str] = []
    app = create_app(str(root), token=TOKEN, plugins=[Lifecycle("a", log), Lifecycle("b", log)], extensions=[])
    with serve(app):
        pass
    assert log[2:] == ["stop b (running=False)", "stop a (running=False)"]


def test_failing_startup_names_the_plugin_and_stops_the_started_ones(root: Path) -> None:
    log: list[str] = []

    class Fails:
        name = "fails"

        @hookimpl
        def carme_startup(self, server: Server) -> None:
            raise OSError("port for the sidecar is taken")

    app = create_app(str(root), plugins=[Lifecycle("a", log), Fails(), Lifecycle("c", log)], extensions=[])
    with pytest.raises(RuntimeError) as raised:
        asyncio.run(app.server.start())
    assert str(raised.value) == "extension 'fails' failed to start: port for the sidecar is taken"
    assert log == ["start a", "stop a (running=False)"]
    assert not app.server.running


def test_failing_shutdown_does_not_stop_the_others(root: Path) -> None:
    log: list[str] = []

    class Fails:
        name = "fails"

        @hookimpl
        def carme_shutdown(self, server: Server) -> None:
            raise RuntimeError("boom")

    app = create_app(str(root), plugins=[Lifecycle("a", log), Fails()], extensions=[])
    with serve(app):
        pass
    assert log[-1] == "stop a (running=False)"


# -- authentication ---------------------------------------------------------------------------


class HeaderAuth:
    """Trusts an X-Remote-User header (as behind an authenticating proxy)."""

    @hookimpl
    async def carme_user_from_connection(self, server: Server, connection: HTTPConnection) -> User | None:
        name = connection.headers.get("x-remote-user")
        if name == "mallory":
            raise ApiError(403, "mallory is banned")
        return User(name, display_name=name.title()) if name else None


def test_hook_carme_user_from_connection(root: Path) -> None:
    app = create_app(str(root), token=TOKEN, plugins=[HeaderAuth()], extensions=[])
    with serve(app) as served:
        me = httpx.get(served.url + "/api/me", headers={"X-Remote-User": "ada"}).json()
        assert me["identity"]["username"] == "ada"
        assert me["identity"]["display_name"] == "Ada"
        # None: the next authenticator (the token) decides.
        assert httpx.get(served.url + "/api/me", headers=AUTH).json()["identity"]["username"] == \
            app.server.auth.anonymous.username
        assert httpx.get(served.url + "/api/me").status_code == 403
        refused = httpx.get(served.url + "/api/me", headers={"X-Remote-User": "mallory"})
        assert refused.status_code == 403
        assert refused.json()["message"] == "mallory is banned"


def test_plugin_authenticated_unsafe_requests_need_xsrf(root: Path) -> None:
    # Like a cookie, a plugin's identity is ambient: the XSRF check applies to it.
    event = {"schema_id": "https://events.jupyter.org/jupyter_server/contents_service/v1", "version": 1,
             "data": {"action": "save", "path": "a.txt"}}
    app = create_app(str(root), token=TOKEN, plugins=[HeaderAuth()], extensions=[])
    with serve(app) as served, httpx.Client(base_url=served.url, headers={"X-Remote-User": "ada"}) as ada:
        refused = ada.post("/api/events", json=event)
        assert refused.status_code == 403
        assert refused.json()["message"] == "'_xsrf' argument missing from POST"
        xsrf = ada.get("/api/me").cookies["_xsrf"]  # set on any authenticated response
        assert ada.post("/api/events", json=event, headers={"X-XSRFToken": xsrf}).status_code == 204


def test_plugin_identity_by_token_skips_xsrf(root: Path) -> None:
    # A credential a browser never sends by itself (a header) is a token: no XSRF echo needed.
    class BearerAuth:
        @hookimpl
        def carme_user_from_connection(self, server: Server, connection: HTTPConnection) -> AuthResult | None:
            if connection.headers.get("authorization") == "token ada-secret":
                return AuthResult(User("ada"), by_token=True)
            return None

    event = {"schema_id": "https://events.jupyter.org/jupyter_server/contents_service/v1", "version": 1,
             "data": {"action": "save", "path": "a.txt"}}
    app = create_app(str(root), token=TOKEN, plugins=[BearerAuth()], extensions=[])
    with serve(app) as served:
        posted = httpx.post(served.url + "/api/events", json=event, headers={"Authorization": "token ada-secret"})
        assert posted.status_code == 204
        assert httpx.post(served.url + "/api/events", json=event,
                          headers={"Authorization": "token guess"}).status_code == 403


def test_authenticate_sees_websockets(root: Path) -> None:
    import websockets.sync.client as ws_client

    app = create_app(str(root), token=TOKEN, plugins=[HeaderAuth()], extensions=[])
    with serve(app) as served:
        with ws_client.connect(served.ws_url + "/api/events/subscribe",
                               additional_headers={"X-Remote-User": "ada"}) as ws:
            event = {"schema_id": "https://events.jupyter.org/jupyter_server/contents_service/v1", "version": 1,
                     "data": {"action": "save", "path": "a.txt"}}
            posted = httpx.post(served.url + "/api/events", json=event, headers=AUTH)
            assert posted.status_code == 204
            assert '"path":"a.txt"' in ws.recv(timeout=10)
