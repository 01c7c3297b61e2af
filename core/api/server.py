"""Server-level routes: /api, /api/status, /api/me, /api/shutdown, /login, /logout, and the
core's top-level settings (where and how to serve)."""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlparse

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from .. import __version__
from ..auth import COOKIE_MAX_AGE, XSRF_COOKIE, base_path
from ..config import Setting
from ..errors import ApiError
from ..hooks import hookimpl
from ..jsonutil import JSONResponse, isoformat, loads

if TYPE_CHECKING:
    from ..server import Server

TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent.parent / "templates"), autoescape=True
)
API_VERSION = "2.21.1"  # the jupyter_server REST API version carme speaks; clients check it


def server_of(request: Request) -> Server:
    return request.app.state.server  # type: ignore[no-any-return]


async def api_version(request: Request) -> Response:
    return JSONResponse({"version": API_VERSION, "carme": __version__})


async def api_status(request: Request) -> Response:
    server = server_of(request)
    kernels = getattr(server, "kernels", None)
    return JSONResponse({
        "connections": kernels.connection_count() if kernels is not None else 0,
        "kernels": len(kernels) if kernels is not None else 0,
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


def _safe_next(request: Request, target: str | None) -> str:
    """Only same-site relative redirects after login (no open redirect)."""
    base = base_path(request.scope)
    if not target:
        return base
    parsed = urlparse(target)
    # Browsers read "/\\host" like "//host"; control characters are never part of a real path.
    if (parsed.scheme or parsed.netloc or not target.startswith("/") or target[1:2] in ("/", "\\")
            or any(ord(ch) < 32 for ch in target)):
        return base
    return target


def _login_page(request: Request, target: str | None, message: str = "", status: int = 200) -> Response:
    xsrf = request.cookies.get(XSRF_COOKIE) or _new_xsrf()
    html = TEMPLATES.get_template("login.html").render(
        base_url=base_path(request.scope), next=_safe_next(request, target), message=message, xsrf=xsrf,
    )
    response = HTMLResponse(html, status_code=status)
    response.set_cookie(XSRF_COOKIE, xsrf, path=base_path(request.scope), samesite="lax")
    return response


def _new_xsrf() -> str:
    import secrets

    return secrets.token_hex(16)


async def login_get(request: Request) -> Response:
    return _login_page(request, request.query_params.get("next"))


async def login_post(request: Request) -> Response:
    server = server_of(request)
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
    cookie_xsrf = request.cookies.get(XSRF_COOKIE, "")
    if not cookie_xsrf or not hmac.compare_digest(cookie_xsrf.encode(), form.get("_xsrf", "").encode()):
        return _login_page(request, form.get("next"), "Your login form expired; please try again.", 403)
    if not server.auth.token_matches(form.get("password", "").strip()):
        # The form again, still leading where the browser was going.
        return _login_page(request, form.get("next"), "Invalid token.", 401)
    response = RedirectResponse(_safe_next(request, form.get("next")), status_code=302)
    response.set_cookie(server.auth.cookie_name(request), server.auth.sign(server.auth.anonymous),
                        max_age=COOKIE_MAX_AGE, path=base_path(request.scope), httponly=True, samesite="lax")
    return response


async def logout(request: Request) -> Response:
    server = server_of(request)
    response = RedirectResponse(base_path(request.scope) + "login", status_code=302)
    response.delete_cookie(server.auth.cookie_name(request), path=base_path(request.scope))
    return response


@hookimpl
def carme_register_routes(server: Server) -> list[BaseRoute]:
    return [
        Route("/api", api_version, methods=["GET"]),
        Route("/api/status", api_status, methods=["GET"]),
        Route("/api/me", api_me, methods=["GET"]),
        Route("/api/shutdown", api_shutdown, methods=["POST"]),
        Route("/login", login_get, methods=["GET"]),
        Route("/login", login_post, methods=["POST"], name="login_post"),
        Route("/logout", logout, methods=["GET", "POST"]),
    ]


@hookimpl
def carme_register_public_paths(server: Server) -> list[str]:
    # /api answers the version only (clients probe it before they have a token).
    return ["/api", "/login", "/logout"]


@hookimpl
def carme_register_settings() -> list[Setting]:
    return [
        Setting("root_dir", str, None, "Folder served (default: the current directory)", nullable=True),
        Setting("ip", str, "127.0.0.1", "Address `carme serve` listens on"),
        Setting("port", int, 8888, "Port `carme serve` listens on (0 picks a free one)"),
        Setting("base_url", str, "/", "URL prefix of every route"),
        Setting("open_browser", bool, True, "`carme serve` opens a browser"),
        Setting("default_url", str, "/lab", "Where / redirects when an extension serves a frontend"),
    ]
