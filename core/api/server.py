"""Server-level routes: /api, /api/spec.yaml, /api/status, /api/me, /api/shutdown."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection, Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from .. import __version__
from ..errors import ApiError
from ..jsonutil import JSONResponse, isoformat, loads
from .permissions import authenticated, authorized

if TYPE_CHECKING:
    from ..server import Server

API_VERSION = "2.21.1"  # the jupyter_server REST API version carme speaks; clients check it
SPEC = Path(__file__).with_name("spec.yaml")


def server_of(conn: HTTPConnection) -> Server:
    """The :class:`~carme.server.Server` of the app serving a request or websocket."""
    return conn.app.state.server  # type: ignore[no-any-return]


async def api_version(request: Request) -> Response:
    return JSONResponse({"version": API_VERSION, "carme": __version__})


@authorized("read", "server")
async def api_spec(request: Request) -> Response:
    """The OpenAPI (Swagger 2.0) description of the core's REST API, as jupyter_server serves its own."""
    return FileResponse(SPEC, media_type="text/x-yaml")


@authorized("read", "server")
async def api_status(request: Request) -> Response:
    server = server_of(request)
    kernels = server.kernels
    return JSONResponse({
        "connections": kernels.connection_count(),
        "kernels": len(kernels),
        "last_activity": isoformat(server.latest_activity()),
        "started": isoformat(server.started),
    })


@authenticated
async def api_me(request: Request) -> Response:
    """The user's identity, and of the permissions asked (``?permissions={"contents": ["read",
    "write"]}``) those the user holds, as jupyter_server answers."""
    raw = request.query_params.get("permissions")
    wanted: object = {}
    bad = f'permissions should be a JSON dict of {{"resource": ["action",]}}, got {raw!r}'
    if raw:
        try:
            wanted = loads(raw)
        except ValueError:
            raise ApiError(400, bad, "Bad Request") from None
    if not isinstance(wanted, dict) or not all(
            isinstance(actions, list) and all(isinstance(a, str) for a in actions) for actions in wanted.values()):
        raise ApiError(400, bad, "Bad Request")
    user = request.scope["user"]
    permissions = await server_of(request).authorizer.permissions(user, wanted)
    return JSONResponse({"identity": user.to_dict(), "permissions": permissions})


@authorized("write", "server")
async def api_shutdown(request: Request) -> Response:
    server_of(request).request_shutdown()
    return Response(status_code=202)


def routes() -> list[BaseRoute]:
    return [
        Route("/api", api_version, methods=["GET"]),
        Route("/api/spec.yaml", api_spec, methods=["GET"]),
        Route("/api/status", api_status, methods=["GET"]),
        Route("/api/me", api_me, methods=["GET"]),
        Route("/api/shutdown", api_shutdown, methods=["POST"]),
    ]
