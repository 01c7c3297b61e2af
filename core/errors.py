"""API errors and their JSON shape: ``{"message": ..., "reason": ...}`` as jupyter_server sends."""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope, Send

from .jsonutil import JSONResponse, dumps

log = logging.getLogger("carme.errors")


class ApiError(Exception):
    """Raise from a route or a service to answer with ``status`` and a JSON message.

    ``reason`` is a short machine-readable phrase (jupyter_server's ``HTTPError.reason``).
    """

    def __init__(self, status: int, message: str, reason: str | None = None,
                 fields: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason
        self.fields = fields or {}  # more keys of the JSON body (a 403's action and resource)


def error_response(status: int, message: str, reason: str | None = None,
                   fields: dict[str, Any] | None = None) -> JSONResponse:
    return JSONResponse({"message": message, "reason": reason, **(fields or {})}, status_code=status)


async def refuse_websocket(scope: Scope, send: Send, status: int, message: str, reason: str | None = None,
                           fields: dict[str, Any] | None = None) -> None:
    """Refuse a websocket before the upgrade: ``status`` with the JSON error body when the ASGI
    server supports the denial-response extension (uvicorn does), else a close with 1008."""
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    body = dumps({"message": message, "reason": reason, **(fields or {})})
    await send({"type": "websocket.http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "websocket.http.response.body", "body": body})


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.reason, exc.fields)


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    response = error_response(exc.status_code, str(exc.detail), None)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def unhandled_error_handler(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"message": "Unhandled error", "reason": None, "traceback": ""}, status_code=500)


EXCEPTION_HANDLERS = {
    ApiError: api_error_handler,
    HTTPException: http_exception_handler,
    Exception: unhandled_error_handler,
}
