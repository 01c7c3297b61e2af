"""The login page (/login) and /logout: a token typed once becomes the signed login cookie."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlparse

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..auth import XSRF_COOKIE, base_path, new_xsrf, same_secret, xsrf_cookie
from .server import server_of

if TYPE_CHECKING:
    import jinja2


@cache
def _templates() -> jinja2.Environment:
    # jinja2 is imported on the first login page, not at start: it is ~5 MB of a server's idle
    # RSS, and a server used with a token or behind a hub may never show this page.
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent.parent / "templates"),
                              autoescape=True)


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
    xsrf = request.cookies.get(XSRF_COOKIE) or new_xsrf()
    html = _templates().get_template("login.html").render(
        base_url=base_path(request.scope), next=_safe_next(request, target), message=message, xsrf=xsrf,
    )
    response = HTMLResponse(html, status_code=status)
    response.headers.append("set-cookie", xsrf_cookie(xsrf, base_path(request.scope)))
    return response


async def login_get(request: Request) -> Response:
    return _login_page(request, request.query_params.get("next"))


async def login_post(request: Request) -> Response:
    server = server_of(request)
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
    if not same_secret(form.get("_xsrf"), request.cookies.get(XSRF_COOKIE)):
        return _login_page(request, form.get("next"), "Your login form expired; please try again.", 403)
    if not server.auth.token_matches(form.get("password", "").strip()):
        # The form again, still leading where the browser was going.
        return _login_page(request, form.get("next"), "Invalid token.", 401)
    response = RedirectResponse(_safe_next(request, form.get("next")), status_code=302)
    response.headers.append("set-cookie", server.auth.login_cookie(request, server.auth.anonymous,
                                                                   base_path(request.scope)))
    return response


async def logout(request: Request) -> Response:
    server = server_of(request)
    response = RedirectResponse(server.settings["logout_url"] or base_path(request.scope) + "login", status_code=302)
    response.delete_cookie(server.auth.cookie_name(request), path=base_path(request.scope))
    return response


def routes() -> list[BaseRoute]:
    return [
        Route("/login", login_get, methods=["GET"]),
        Route("/login", login_post, methods=["POST"], name="login_post"),
        Route("/logout", logout, methods=["GET", "POST"]),
    ]
