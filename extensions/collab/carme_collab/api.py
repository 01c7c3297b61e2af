"""REST routes of the collab extension: the session endpoint and the file-ID endpoints."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from carme.api.permissions import authorized
from carme.api.util import json_object
from carme.errors import ApiError
from carme.jsonutil import JSONResponse

from .service import CollabService


def service_of(request: Request) -> CollabService:
    service = request.app.state.server.services.get("collab")
    if service is None:
        raise ApiError(503, "the collab extension has not started", "Service Unavailable")
    return service  # type: ignore[no-any-return]


@authorized("read", "contents", path="path")
async def session(request: Request) -> Response:
    """PUT /api/collaboration/session/PATH {format, type}: 201 when newly indexed, else 200."""
    body = await json_object(request)
    assert body is not None
    missing = [key for key in ("format", "type") if not isinstance(body.get(key), str)]
    if missing:
        raise ApiError(400, f"the body must name the document's {' and '.join(missing)} (strings)", "Bad Request")
    data, created = await service_of(request).session(request.path_params["path"], body["format"], body["type"])
    return JSONResponse(data, status_code=201 if created else 200)


@authorized("read", "contents")
async def file_id(request: Request) -> Response:
    """GET /api/fileid/id?path=PATH: the id of an indexed file (404 when it has none)."""
    path = _query(request, "path")
    found = await service_of(request).file_ids.get_id(path)
    if found is None:
        raise ApiError(404, f"no file id for {path}", "Not Found")
    return JSONResponse({"id": found, "path": path.strip("/")})


@authorized("read", "contents")
async def file_path(request: Request) -> Response:
    """GET /api/fileid/path?id=ID: the current path of a file id (404 when unknown)."""
    wanted = _query(request, "id")
    found = await service_of(request).file_ids.get_path(wanted)
    if found is None:
        raise ApiError(404, f"no file has the id {wanted}", "Not Found")
    return JSONResponse({"id": wanted, "path": found})


def _query(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if not value:
        raise ApiError(400, f"the query parameter {name!r} is missing", "Bad Request")
    return value


def routes(room_endpoint: object) -> list[BaseRoute]:
    return [
        Route("/api/collaboration/session/{path:path}", session, methods=["PUT"]),
        # The room names a file by id, not path: collab checks writes itself (carme_collab_can_write).
        WebSocketRoute("/api/collaboration/room/{room:path}", authorized("read", "contents")(room_endpoint)),
        Route("/api/fileid/id", file_id, methods=["GET"]),
        Route("/api/fileid/path", file_path, methods=["GET"]),
    ]
