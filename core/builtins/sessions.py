"""The built-in sessions plugin: the session manager and the /api/sessions routes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

from ..api import sessions as sessions_api
from ..hooks import hookimpl
from ..sessions import SessionManager

if TYPE_CHECKING:
    from ..server import Server


@hookimpl
def carme_startup(server: Server) -> None:
    server.sessions = SessionManager(server)


@hookimpl
def carme_register_routes(server: Server) -> list[BaseRoute]:
    return sessions_api.routes()
