"""Server extensions over REST: ``GET /api/extensions`` lists them, ``PATCH /api/extensions/NAME``
with ``{"enabled": true|false}`` enables or disables one at the user level (a restart applies it).

Who may: the users the authorization (hook ``carme_permission``) allows ``read`` (list) and
``write`` (change) on the resource ``server``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..config import ConfigError
from ..errors import ApiError
from ..jsonutil import JSONResponse
from .permissions import authorized
from .server import server_of
from .util import bad_request, json_object

if TYPE_CHECKING:
    from ..extension_state import ExtensionStates

LEVEL = "user"  # the REST API changes the requesting user's own configuration


def _states(request: Request) -> ExtensionStates:
    return server_of(request).services["extensions"]  # type: ignore[no-any-return]


def _config_error(exc: ConfigError) -> ApiError:
    return ApiError(500, str(exc), "Configuration Error")


@authorized("read", "server")
async def list_extensions(request: Request) -> Response:
    states = _states(request)
    try:
        found = await asyncio.to_thread(states.describe)
    except ConfigError as exc:
        raise _config_error(exc) from None
    return JSONResponse({"level": LEVEL, "extensions": [status.to_dict() for status in found]})


@authorized("write", "server")
async def patch_extension(request: Request) -> Response:
    states = _states(request)
    name = request.path_params["name"]
    body = await json_object(request) or {}
    unknown = sorted(set(body) - {"enabled"})
    if unknown:
        raise bad_request(f"unknown field(s) {', '.join(unknown)}; only 'enabled' can be changed")
    enabled = body.get("enabled")
    if not isinstance(enabled, bool):
        raise bad_request(f"'enabled' must be true or false, not {enabled!r}")
    if name not in states.plugins.extensions:
        known = ", ".join(sorted(states.plugins.extensions)) or "none"
        raise ApiError(404, f"no installed extension is named {name!r}; installed extensions: {known}", "Not Found")
    try:
        path, status = await asyncio.to_thread(states.set_enabled, name, enabled, LEVEL)
    except ConfigError as exc:
        raise _config_error(exc) from None
    return JSONResponse({**status.to_dict(), "config_file": str(path)})


def routes() -> list[BaseRoute]:
    return [
        Route("/api/extensions", list_extensions, methods=["GET"]),
        Route("/api/extensions/{name}", patch_extension, methods=["PATCH"]),
    ]
