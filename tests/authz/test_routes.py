"""Every route of the core and of every bundled extension declares what it needs.

The walk goes through the assembled app (mounted routers included) with every installed extension
enabled; only public paths (carme_register_public_paths) may declare nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from carme import create_app, hookimpl
from carme.api.permissions import Permission, authenticated, authorized, declared, walk
from carme.app import undeclared_routes
from carme.plugins import installed_extensions
from carme.server import Server
from tests.conftest import TOKEN


async def hello(request: Request) -> Response:
    return PlainTextResponse("hello")


class Undeclared:
    name = "undeclared"

    @hookimpl
    def carme_register_routes(self, server: Server) -> list[Route]:
        return [Route("/undeclared", hello, methods=["GET"])]


def test_every_route_declares_its_permission(root: Path) -> None:
    app = create_app(str(root), token=TOKEN, extensions=list(installed_extensions()), config_files=False)
    paths = [path for path, _route in walk(app.router.routes)]
    # The walk reaches the core's routes and the extensions' (lab pages, collab rooms, widgets).
    assert {"/api/contents/{path:path}", "/api/kernels/{kernel_id}/channels", "/lab",
            "/api/collaboration/room/{room:path}", "/api/widgets/{kernel_id}"} <= set(paths)
    assert undeclared_routes(app.router.routes, app.server.public_paths) == []


def test_a_route_without_declaration_is_found_and_logged(root: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="carme.app"):
        app = create_app(str(root), token=TOKEN, extensions=[], config_files=False, plugins=[Undeclared()])
    assert undeclared_routes(app.router.routes, app.server.public_paths) == ["/undeclared"]
    assert "route /undeclared declares no permission" in caplog.text


def test_walk_under_a_base_url(root: Path) -> None:
    app = create_app(str(root), token=TOKEN, extensions=[], config_files=False, base_url="/user/me/")
    paths = dict(walk(app.router.routes))
    assert declared(paths["/user/me/api/kernels/{kernel_id}/channels"]) == (Permission("read", "kernels"),)
    assert undeclared_routes(app.router.routes, ["/user/me" + p for p in app.server.public_paths]) == []


def test_declarations_stack_in_order() -> None:
    endpoint = authorized("execute", "dashboards")(authorized("read", "contents", path="path")(hello))
    assert declared(Route("/d/{path:path}", endpoint)) == (Permission("execute", "dashboards"),
                                                           Permission("read", "contents", "path"))
    assert declared(Route("/plain", hello)) is None

    async def me(request: Request) -> Response:
        return PlainTextResponse("me")

    assert declared(Route("/me", authenticated(me))) == ()
