"""HTTP methods per resource: 405 with the exact ``Allow`` header, and OPTIONS answered.

carme declares one Starlette route per method (each with its own permission), so Starlette
alone would answer a wrong method with the ``Allow`` of whichever route it met first
(``GET, HEAD`` for POST-able /api/kernels) and OPTIONS with 405. Here the routes sharing a path
template are one resource, as a tornado handler is in jupyter_server: the first template that
matches the URL owns it, its methods are the union of those routes' methods, any other method is
405 naming them, and OPTIONS lists them (CORS preflights are answered earlier, by the auth
middleware). A greedy ``{path:path}`` template later in the list never takes a method its more
specific owner lacks (PUT on .../checkpoints is 405, as in jupyter_server, not a file save).
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import error_response

ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allow_header(methods: Iterable[str]) -> str:
    """The methods in a stable order (the usual ones first), OPTIONS always last."""
    wanted = {m.upper() for m in methods} | {"OPTIONS"}
    known = [m for m in ORDER if m in wanted]
    return ", ".join(known[:-1] + sorted(wanted - set(ORDER)) + ["OPTIONS"])


class Resources:
    """The routes of one app grouped by path template: which methods each template serves."""

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        self.routes = list(routes)
        self.methods: dict[str, set[str] | None] = {}
        for route in self.routes:
            if isinstance(route, Route):
                known = self.methods.get(route.path, set())
                # A route without a method list (an ASGI app) serves every method: not ours to judge.
                self.methods[route.path] = None if route.methods is None or known is None else known | route.methods

    def owner(self, scope: Scope) -> Route | None:
        """The first route whose path template matches this request, whatever its method;
        None when the first match is something else (a mount, static files) or nothing."""
        for route in self.routes:
            match, _child = route.matches(scope)
            if match is not Match.NONE:
                return route if isinstance(route, Route) else None
        return None

    def allowed(self, scope: Scope) -> set[str] | None:
        """The methods of the resource this request addresses; None when it is not judged here."""
        route = self.owner(scope)
        return None if route is None else self.methods.get(route.path)


class MethodsMiddleware:
    """405 + ``Allow`` for a method a resource does not serve; 204 + ``Allow`` for OPTIONS."""

    def __init__(self, app: ASGIApp, routes: Iterable[BaseRoute]) -> None:
        self.app = app
        self.resources = Resources(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            allowed = self.resources.allowed(scope)
            method = scope["method"]
            if allowed is not None and method not in allowed:
                allow = allow_header(allowed)
                response: Response
                if method == "OPTIONS":
                    response = Response(status_code=204, headers={"Allow": allow})
                else:
                    response = error_response(405, f"{method} is not allowed on {scope['path']}; allowed: {allow}",
                                              "Method Not Allowed")
                    response.headers["Allow"] = allow
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
