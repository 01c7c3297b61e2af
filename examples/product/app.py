"""Notebook Co.: a small notebook product built on carme.

A Starlette app with its own users and its own sign-in page; carme is mounted under
``/notebooks/`` and learns who is signed in through the ``carme_user_from_connection`` hook, reading the
product's session cookie, and what each may do through the ``carme_permission`` hook, from the
user's role: an admin does everything, an editor everything but administering the server, a viewer
reads notebooks and watches running kernels but writes nothing and runs no code. The product's
lifespan runs carme's, so kernels stop with it.

Run it from the repository root::

    .venv/bin/python -m examples.product.app      # carme.run: the server settings of `carme serve`

then open http://127.0.0.1:8000/ and sign in as ada (admin), grace (editor) or alan (viewer);
the password is the name reversed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import os
import secrets
from pathlib import Path
from urllib.parse import parse_qs, quote

from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

import carme
from carme.auth import User

SESSION_COOKIE = "notebookco-session"
USERS = {"ada": "Ada Lovelace", "grace": "Grace Hopper", "alan": "Alan Turing"}  # a real product has a database
ROLES = {"ada": "admin", "grace": "editor", "alan": "viewer"}


def role_allows(role: str, action: str, resource: str) -> bool | None:
    """The product's rules, in carme's terms: False denies, None leaves it to carme (allowed)."""
    if role == "viewer" and action != "read":
        return False  # no writes, no code: outputs of running kernels are watched, not made
    if role == "editor" and resource == "server" and action != "read":
        return False  # shutting the server down, installing lab extensions: admins only
    return None


class Sessions:
    """Signed session cookies holding the user name (the product's own scheme, nothing of carme)."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    def _mac(self, payload: str) -> str:
        return hmac.new(self.secret, payload.encode(), hashlib.sha256).hexdigest()

    def issue(self, username: str) -> str:
        payload = base64.urlsafe_b64encode(username.encode()).decode()
        return f"{payload}.{self._mac(payload)}"

    def user(self, cookie: str | None) -> str | None:
        payload, _, mac = (cookie or "").partition(".")
        if not mac or not hmac.compare_digest(mac.encode(), self._mac(payload).encode()):
            return None
        name = base64.urlsafe_b64decode(payload.encode()).decode()
        return name if name in USERS else None


class ProductAuth:
    """The carme plugin: who is signed in to the product is who uses the notebooks."""

    name = "notebookco"

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    @carme.hookimpl
    def carme_user_from_connection(self, server: object, connection: HTTPConnection) -> User | None:
        username = self.sessions.user(connection.cookies.get(SESSION_COOKIE))
        if username is None:
            return None  # not signed in: carme refuses (API) or sends the browser to login_url
        full = USERS[username]
        return User(username, name=full, display_name=full, initials="".join(w[0] for w in full.split()))

    @carme.hookimpl
    def carme_permission(self, user: User, action: str, resource: str) -> bool | None:
        return role_allows(ROLES.get(user.username, "viewer"), action, resource)


def create_product(notebooks: str | Path, secret: bytes | None = None, extensions: list[str] | None = None) -> Starlette:
    """The product app; ``notebooks`` is the folder every user works in; ``extensions`` the carme
    extensions it enables (default: every one installed)."""
    sessions = Sessions(secret or secrets.token_bytes(32))
    notebook_app = carme.create_app(
        str(notebooks),
        plugins=[ProductAuth(sessions)],
        extensions=extensions,
        # Browsers that are not signed in go to the product's page, not carme's token form.
        settings={"login_url": "/signin"},
    )

    async def home(request: Request) -> Response:
        username = sessions.user(request.cookies.get(SESSION_COOKIE))
        if username is None:
            return RedirectResponse("/signin", status_code=302)
        return HTMLResponse(f"<h1>Notebook Co.</h1><p>Hello {html.escape(USERS[username])} "
                            f"({ROLES[username]}).</p>"
                            f'<p><a href="/notebooks/api/contents">Your notebooks</a> · '
                            f'<form method="post" action="/signout"><button>Sign out</button></form></p>')

    async def signin_page(request: Request) -> Response:
        target = html.escape(request.query_params.get("next", "/"))
        # No favicon: the inline empty icon keeps the browser from asking for /favicon.ico.
        return HTMLResponse(f'<link rel="icon" href="data:,"><form method="post" action="/signin">'
                            f'<input name="username"><input name="password" '
                            f'type="password"><input type="hidden" name="next" value="{target}">'
                            f"<button>Sign in</button></form>")

    async def signin(request: Request) -> Response:
        # A plain urlencoded form: parsed by hand, so the example needs no python-multipart.
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        username, password = form.get("username", ""), form.get("password", "")
        if username not in USERS or not hmac.compare_digest(password.encode(), username[::-1].encode()):
            return HTMLResponse("<p>Wrong name or password.</p>", status_code=401)
        target = form.get("next") or "/"
        if not target.startswith("/") or target.startswith(("//", "/\\")):
            target = "/"
        response = RedirectResponse(quote(target, safe="/?=&%"), status_code=302)
        response.set_cookie(SESSION_COOKIE, sessions.issue(username), httponly=True, samesite="lax")
        return response

    async def signout(request: Request) -> Response:
        response = RedirectResponse("/signin", status_code=302)
        response.delete_cookie(SESSION_COOKIE)
        return response

    product = Starlette(
        routes=[
            Route("/", home),
            Route("/signin", signin_page, methods=["GET"]),
            Route("/signin", signin, methods=["POST"]),
            Route("/signout", signout, methods=["POST"]),
            Mount("/notebooks", app=notebook_app),
        ],
        # carme's lifespan inside the product's: services start before the first request and
        # every kernel is shut down when the product stops.
        lifespan=notebook_app.lifespan,
    )
    product.state.notebooks = notebook_app  # carme's app, whose settings the server runs with (main)
    return product


def _default_app() -> Starlette:
    folder = Path(os.environ.get("NOTEBOOKCO_ROOT", Path(__file__).resolve().parents[1] / "demo"))
    return create_product(folder)


def main() -> None:
    """Serve the product with the uvicorn settings carme's kernel websockets need (no websocket
    compression, carme's message size limit): ``carme.run``."""
    product = _default_app()
    carme.run(product, carme_app=product.state.notebooks, host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))


def __getattr__(name: str) -> Starlette:
    # `uvicorn examples.product.app:app` builds the app on first access, not at import.
    if name == "app":
        return _default_app()
    raise AttributeError(name)


if __name__ == "__main__":
    main()
