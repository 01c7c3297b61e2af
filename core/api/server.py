"""Server-level routes: /api, /api/status, /api/me, /api/shutdown."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .. import __version__
from ..errors import ApiError
from ..jsonutil import JSONResponse, isoformat, loads

if TYPE_CHECKING:
    from ..server import Server

API_VERSION = "2.21.1"  # the jupyter_server REST API version carme speaks; clients check it


def server_of(conn: HTTPConnection) -> Server:
    """The :class:`~carme.server.Server` of the app serving a request or websocket."""
    return conn.app.state.server  # type: ignore[no-any-return]


async def api_version(request: Request) -> Response:
    return JSONResponse({"version": API_VERSION, "carme": __version__})


async def api_status(request: Request) -> Response:
    server = server_of(request)
    kernels = server.kernels
    return JSONResponse({
        "connections": kernels.connection_count(),
        "kernels": len(kernels),
        "last_activity": isoformat(server.last_activity),
        "started": isoformat(server.started),
    })


async def api_me(request: Request) -> Response:
    raw = request.query_params.get("permissions")
    permissions: dict[str, list[str]] = {}
    if raw:
        try:
            wanted = loads(raw)
        except ValueError:
            raise ApiError(400, f"permissions should be a JSON dict of {{resource: [actions]}}, got {raw!r}") from None
        if not isinstance(wanted, dict) or not all(isinstance(v, list) for v in wanted.values()):
            raise ApiError(400, f"permissions should be a JSON dict of {{resource: [actions]}}, got {raw!r}")
        # carme's built-in authorization allows every action to an authenticated user.
        permissions = {resource: [a for a in actions if isinstance(a, str)] for resource, actions in wanted.items()}
    return JSONResponse({"identity": request.scope["user"].to_dict(), "permissions": permissions})


async def api_shutdown(request: Request) -> Response:
    server_of(request).request_shutdown()
    return Response(status_code=202)


def routes() -> list[BaseRoute]:
    return [
        Route("/api", api_version, methods=["GET"]),
        Route("/api/status", api_status, methods=["GET"]),
        Route("/api/me", api_me, methods=["GET"]),
        Route("/api/shutdown", api_shutdown, methods=["POST"]),
    ]
