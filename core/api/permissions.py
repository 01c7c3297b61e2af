"""What each route needs: the one way a route declares the action and resource it performs.

Decorate the endpoint (a Starlette function endpoint, or any ASGI app: a websocket endpoint
object, a static-files app behind a ``Mount``)::

    from carme.api.permissions import authorized

    @authorized("read", "contents", path="path")   # path: the URL parameter holding the file path
    async def get_file(request): ...

    Route("/files/{path:path}", get_file, methods=["GET"])
    WebSocketRoute("/api/kernels/{kernel_id}/channels", authorized("read", "kernels")(endpoint))

Stack decorators when a route needs several permissions (all must be granted, checked in the
order written). :func:`authenticated` declares a route that any identified user may use (/api/me).
The checks run before the endpoint: a denied HTTP request gets 403 JSON naming the action and
resource, a denied websocket is refused before the upgrade with the same body. Public paths
(``carme_register_public_paths``) need no declaration. Permissions that depend on the request
body (the source of a copy, the new path of a rename) are checked in the handler with
:func:`require`.
"""

from __future__ import annotations

import functools
import inspect
import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.requests import HTTPConnection
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from ..authorization import Forbidden
from ..errors import error_response, refuse_websocket

if TYPE_CHECKING:
    from ..server import Server

ATTRIBUTE = "__carme_permissions__"
E = TypeVar("E")


@dataclass(frozen=True)
class Permission:
    """One thing a route needs: ``action`` on ``resource``; ``path_param`` names the URL parameter
    whose value (an API path) is passed to the hook as ``path``."""

    action: str
    resource: str
    path_param: str | None = None


def api_path(value: object) -> str:
    """An API path as the hook sees it: ``/``-separated, no leading or trailing slash, ``.`` and
    ``..`` resolved (so ``shared/../private`` is judged as ``private``, where it would be written)."""
    joined = "/".join(part for part in str(value).split("/") if part)
    normal = posixpath.normpath(joined) if joined else ""
    return "" if normal == "." else normal


def server_of_scope(scope: Scope) -> Server:
    return scope["app"].state.server  # type: ignore[no-any-return]


async def check(scope: Scope, permissions: tuple[Permission, ...]) -> None:
    """Raise :class:`~carme.authorization.Forbidden` for the first permission not granted."""
    if not permissions:
        return
    authorizer = server_of_scope(scope).authorizer
    params = scope.get("path_params", {})
    for need in permissions:
        path = api_path(params.get(need.path_param, "")) if need.path_param else None
        await authorizer.require(scope.get("user"), need.action, need.resource, path)


async def require(conn: HTTPConnection, action: str, resource: str, path: str | None = None) -> None:
    """Check one more permission inside a handler (a path from the request body); 403 when denied."""
    await server_of_scope(conn.scope).authorizer.require(conn.scope.get("user"), action, resource,
                                                         None if path is None else api_path(path))


async def allowed(conn: HTTPConnection, action: str, resource: str, path: str | None = None) -> bool:
    """Whether this connection's user may; nothing is published (for shaping replies: ``writable``)."""
    return await server_of_scope(conn.scope).authorizer.allowed(conn.scope.get("user"), action, resource,
                                                                None if path is None else api_path(path))


async def _deny(scope: Scope, receive: Receive, send: Send, exc: Forbidden) -> None:
    if scope["type"] == "websocket":
        await refuse_websocket(scope, send, 403, exc.message, exc.reason, exc.fields)  # before the upgrade
    else:
        await error_response(403, exc.message, exc.reason, exc.fields)(scope, receive, send)


class AuthorizedApp:
    """An ASGI app behind its permissions (what :func:`authorized` makes of a non-function endpoint)."""

    def __init__(self, app: ASGIApp, permissions: tuple[Permission, ...]) -> None:
        self.app = app
        setattr(self, ATTRIBUTE, permissions)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)  # a Mount reads .routes of a wrapped router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            try:
                await check(scope, getattr(self, ATTRIBUTE))
            except Forbidden as exc:
                await _deny(scope, receive, send, exc)
                return
        await self.app(scope, receive, send)


def _declare(endpoint: Any, permissions: tuple[Permission, ...]) -> Any:
    declared: tuple[Permission, ...] = getattr(endpoint, ATTRIBUTE, None) or ()
    if isinstance(endpoint, AuthorizedApp):
        return AuthorizedApp(endpoint.app, permissions + declared)
    if not _is_function_endpoint(endpoint):
        return AuthorizedApp(endpoint, permissions)
    inner = getattr(endpoint, "__carme_endpoint__", endpoint)
    every = permissions + declared  # decorators apply bottom-up; checks run in the order written

    @functools.wraps(inner)
    async def checked(conn: Any) -> Any:
        try:
            await check(conn.scope, every)
        except Forbidden as exc:
            if not isinstance(conn, WebSocket):
                raise  # the app's handler answers 403 JSON
            await refuse_websocket(conn.scope, conn.send, 403, exc.message, exc.reason, exc.fields)
            return None
        return await inner(conn)

    setattr(checked, ATTRIBUTE, every)
    checked.__carme_endpoint__ = inner  # type: ignore[attr-defined]
    return checked


def _is_function_endpoint(endpoint: Any) -> bool:
    """Starlette's own test: functions and methods take a request; anything else is ASGI."""
    while isinstance(endpoint, functools.partial):
        endpoint = endpoint.func
    return inspect.isfunction(endpoint) or inspect.ismethod(endpoint)


def authorized(action: str, resource: str, *, path: str | None = None) -> Callable[[E], E]:
    """Declare that an endpoint needs ``action`` on ``resource``; ``path`` names the URL parameter
    holding the file path the action applies to (``"path"`` in ``/api/contents/{path:path}``)."""
    permission = Permission(action, resource, path)
    return lambda endpoint: _declare(endpoint, (permission,))  # type: ignore[no-any-return]


def authenticated(endpoint: E) -> E:
    """Declare that an endpoint needs no permission: any identified user may use it (/api/me)."""
    if _is_function_endpoint(endpoint):
        setattr(endpoint, ATTRIBUTE, getattr(endpoint, ATTRIBUTE, None) or ())
        return endpoint
    return _declare(endpoint, ())  # type: ignore[no-any-return]


def declared(route: BaseRoute) -> tuple[Permission, ...] | None:
    """The permissions a route declares; None when it declares none."""
    target = route.endpoint if isinstance(route, Route | WebSocketRoute) else getattr(route, "app", None)
    return getattr(target, ATTRIBUTE, None)


def walk(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, BaseRoute]]:
    """Every route with its full path, descending into mounted routers; a ``Mount`` whose app
    declares permissions (static files behind a check) is one route."""
    for route in routes:
        if isinstance(route, Mount) and declared(route) is None and route.routes:
            yield from walk(route.routes, prefix + route.path)
        else:
            yield prefix + getattr(route, "path", ""), route
