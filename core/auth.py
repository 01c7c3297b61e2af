"""Identity, token, cookie, XSRF, Origin and Host checks, as jupyter_server does them.

- A request is authenticated by ``Authorization: token|bearer <t>``, ``?token=<t>``, or the
  signed login cookie set after the first token-authenticated request.
- Unsafe requests (POST/PUT/PATCH/DELETE) authenticated by cookie only must carry the ``_xsrf``
  cookie's value in ``X-XSRFToken`` (or ``X-CSRFToken``, or an ``_xsrf`` field).
- Cross-origin API requests and websockets are refused unless the origin is allowed
  (``allow_origin`` / ``allow_origin_pat``) or the request carries the token.
- Unauthenticated API requests and websockets get 403 JSON; pages redirect to /login.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlparse

from jupyter_core.paths import jupyter_runtime_dir
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ApiError, error_response, refuse_websocket
from .jsonutil import dumps, loads
from .secretfile import read_or_create_secret

if TYPE_CHECKING:
    from .server import Server

log = logging.getLogger("carme.auth")

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
XSRF_COOKIE = "_xsrf"
_AUTH_HEADER = re.compile(r"(?:token|bearer)\s+(.+)", re.IGNORECASE)
COOKIE_MAX_AGE = 30 * 24 * 3600
_MOONS = ["Adrastea", "Amalthea", "Ananke", "Callisto", "Carme", "Elara", "Europa", "Ganymede", "Himalia",
          "Io", "Leda", "Lysithea", "Metis", "Pasiphae", "Sinope", "Thebe"]
_COLORS = ["var(--jp-collaborator-color1)", "var(--jp-collaborator-color2)", "var(--jp-collaborator-color3)",
           "var(--jp-collaborator-color4)", "var(--jp-collaborator-color5)", "var(--jp-collaborator-color6)",
           "var(--jp-collaborator-color7)"]


@dataclass(frozen=True)
class User:
    """Who is making a request: jupyter_server's identity model."""

    username: str
    name: str = ""
    display_name: str = ""
    initials: str | None = None
    avatar_url: str | None = None
    color: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["name"] = self.name or self.username
        data["display_name"] = self.display_name or data["name"]
        return data


def anonymous_user() -> User:
    """A fresh anonymous user, named after a moon of Jupiter as jupyter_server does."""
    moon = secrets.choice(_MOONS)
    return User(secrets.token_hex(16), f"Anonymous {moon}", f"Anonymous {moon}", "A" + moon[0],
                None, secrets.choice(_COLORS))


def same_secret(given: str | None, expected: str | None) -> bool:
    """Both set and equal, compared in constant time (tokens, XSRF values)."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def new_xsrf() -> str:
    """A fresh value for the ``_xsrf`` cookie."""
    return secrets.token_hex(16)


def xsrf_cookie(value: str, path: str) -> str:
    """The ``Set-Cookie`` value of the ``_xsrf`` cookie under ``path`` (readable by page scripts,
    which echo it in ``X-XSRFToken``)."""
    return f"{XSRF_COOKIE}={value}; Path={path}; SameSite=Lax"


def resolve_token(configured: str | None, environ: dict[str, str] | None = None) -> tuple[str, bool]:
    """The token to use and whether it was generated: setting > JUPYTER_TOKEN > file > random."""
    env = os.environ if environ is None else environ
    if configured:
        return configured, False
    if env.get("JUPYTER_TOKEN"):
        return env["JUPYTER_TOKEN"], False
    token_file = env.get("JUPYTER_TOKEN_FILE")
    if token_file and Path(token_file).is_file():
        return Path(token_file).read_text().strip(), False
    return secrets.token_hex(24), True


SECRET_FILE = "carme_cookie_secret"  # in the Jupyter runtime dir, as jupyter_server's jupyter_cookie_secret


def load_cookie_secret(path: Path) -> bytes:
    """The cookie-signing secret kept in ``path`` (made there on first use, see
    :func:`~carme.secretfile.read_or_create_secret`), so login cookies outlive a restart as
    jupyter_server's do (its ``cookie_secret_file``). A file that cannot be read or written leaves
    a secret of this process alone (logged): logins then end with it."""
    try:
        return read_or_create_secret(path, lambda: secrets.token_bytes(32))
    except OSError as exc:
        log.error("cannot use the cookie secret file %s (%s): logins end when this server stops", path, exc)
        return secrets.token_bytes(32)


def cookie_secret_path(configured: str) -> Path:
    """The ``cookie_secret_file`` setting, or carme's file in the Jupyter runtime dir."""
    if configured:
        return Path(configured).expanduser()
    return Path(jupyter_runtime_dir()) / SECRET_FILE


class Authenticator:
    """The token, the cookie signing secret and the checks of one server."""

    def __init__(self, server: Server) -> None:
        settings = server.settings
        self.enabled: bool = settings["auth_enabled"]
        self.token, self.token_generated = resolve_token(settings["token"]) if self.enabled else ("", False)
        # No auth, no cookie to sign: the runtime dir is left alone.
        self.secret = load_cookie_secret(cookie_secret_path(settings["cookie_secret_file"])) if self.enabled \
            else secrets.token_bytes(32)
        self.allow_origin: str = settings["allow_origin"]
        self.allow_origin_pat = re.compile(settings["allow_origin_pat"]) if settings["allow_origin_pat"] else None
        self.allow_credentials: bool = settings["allow_credentials"]
        self.disable_check_xsrf: bool = settings["disable_check_xsrf"]
        self.allow_remote_access: bool | None = settings["allow_remote_access"]
        self.local_hostnames: list[str] = settings["local_hostnames"]
        self.login_url: str = settings["login_url"]
        self.anonymous = anonymous_user()

    def named_user(self, user: User | None) -> User | None:
        """``user``, unless it is the anonymous stand-in of token or no auth: its random name is
        nobody's, so it is not passed on as who started a kernel."""
        return None if user is None or user == self.anonymous else user

    # -- tokens and cookies -------------------------------------------------------------------

    def token_from(self, conn: HTTPConnection) -> str | None:
        header = conn.headers.get("authorization")
        if header:
            match = _AUTH_HEADER.match(header)
            if match:
                return match.group(1).strip()
        return conn.query_params.get("token")

    def token_matches(self, token: str | None) -> bool:
        return same_secret(token, self.token)

    @staticmethod
    def cookie_name(conn: HTTPConnection) -> str:
        host = conn.headers.get("host", "")
        return "username-" + re.sub(r"[^A-Za-z0-9]", "-", host)

    def sign(self, user: User) -> str:
        payload = base64.urlsafe_b64encode(dumps(user.to_dict())).decode()
        mac = hmac.new(self.secret, payload.encode(), hashlib.sha256).hexdigest()
        return f"{payload}|{mac}"

    def unsign(self, value: str) -> User | None:
        payload, _, mac = value.partition("|")
        expected = hmac.new(self.secret, payload.encode(), hashlib.sha256).hexdigest()
        if not mac or not hmac.compare_digest(mac, expected):
            return None
        try:
            data = loads(base64.urlsafe_b64decode(payload.encode()))
            return User(**{k: data.get(k) for k in ("username", "name", "display_name", "initials",
                                                     "avatar_url", "color")})
        except (ValueError, TypeError):
            return None

    # -- checks ---------------------------------------------------------------------------------

    def origin_allowed(self, conn: HTTPConnection) -> bool:
        """jupyter_server's check_origin: same host, or an allowed origin, or no Origin at all."""
        if self.allow_origin == "*":
            return True
        origin = conn.headers.get("origin")
        host = conn.headers.get("host")
        if not origin or not host:
            return True
        if urlparse(origin.lower()).netloc == host.lower():
            return True
        if self.allow_origin and origin == self.allow_origin:
            return True
        return bool(self.allow_origin_pat and self.allow_origin_pat.fullmatch(origin))

    def host_allowed(self, conn: HTTPConnection) -> bool:
        """DNS-rebinding defence when serving on loopback: the Host must be local."""
        if self.allow_remote_access is not False:
            return True
        host = conn.headers.get("host", "")
        name = host.rsplit(":", 1)[0].strip("[]") if not host.startswith("[") or "]" in host else host
        if host.startswith("["):
            name = host[1:].split("]", 1)[0]
        if name in self.local_hostnames:
            return True
        try:
            return ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False

    def xsrf_ok(self, conn: HTTPConnection) -> bool:
        """The ``_xsrf`` cookie is echoed in a header (or the query) of this request."""
        sent = conn.headers.get("x-xsrftoken") or conn.headers.get("x-csrftoken") or conn.query_params.get(XSRF_COOKIE)
        return same_secret(conn.cookies.get(XSRF_COOKIE), sent)

    # -- cookies set on responses -----------------------------------------------------------------

    def login_cookie(self, conn: HTTPConnection, user: User, path: str) -> str:
        """The ``Set-Cookie`` value that keeps ``user`` logged in under ``path``."""
        return (f"{self.cookie_name(conn)}={self.sign(user)}; Path={path}; Max-Age={COOKIE_MAX_AGE}; "
                "HttpOnly; SameSite=Lax")


@dataclass
class AuthResult:
    """Who made a request and how: ``by_token`` requests skip the Origin and XSRF checks (a
    cross-site page cannot know the token); cookie, plugin and no-auth identities are ambient,
    so the checks apply to them."""

    user: User | None
    by_token: bool = False
    set_cookie: bool = False
    check_xsrf: bool = True


async def identify(server: Server, conn: HTTPConnection) -> AuthResult:
    """Find the user of a request: plugins first (carme_user_from_connection), then token, then cookie."""
    auth = server.auth
    if not auth.enabled:
        # No secret exists, so there is nothing for an XSRF token to protect; the Origin check
        # still keeps other web sites out (a page cannot hide its Origin).
        return AuthResult(auth.anonymous, check_xsrf=False)
    found = await server.plugins.first("carme_user_from_connection", server=server, connection=conn)
    if isinstance(found, AuthResult):
        return found
    if found is not None:
        return AuthResult(found)
    token = auth.token_from(conn)
    cookie = conn.cookies.get(auth.cookie_name(conn))
    if auth.token_matches(token):
        from_cookie = auth.unsign(cookie) if cookie else None
        return AuthResult(from_cookie or auth.anonymous, by_token=True, set_cookie=from_cookie is None)
    if cookie:
        return AuthResult(auth.unsign(cookie))
    return AuthResult(None)


class PathSet:
    """App-relative paths as plugins declare them: one ending in ``/`` covers everything below
    it, any other is exact (public paths, API paths)."""

    def __init__(self, paths: Iterable[str]) -> None:
        self.exact = frozenset(p for p in paths if not p.endswith("/"))
        self.prefixes = tuple(sorted({p for p in paths if p.endswith("/")}))

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and (path in self.exact or path.startswith(self.prefixes))


def base_path(scope: Scope) -> str:
    """The URL prefix in front of this app's routes (mount prefix + base URL), ending in '/'."""
    return (scope.get("root_path", "") or "").rstrip("/") + "/"


class AuthMiddleware:
    """Authenticates every HTTP request and websocket that is not public, and applies the checks."""

    def __init__(self, app: ASGIApp, server: Server, public_paths: Iterable[str],
                 api_paths: Iterable[str] = ()) -> None:
        self.app = app
        self.server = server
        self.public = PathSet(public_paths)
        self.api = PathSet(api_paths)

    def _relative(self, scope: Scope) -> str:
        path: str = scope["path"]
        root = scope.get("root_path", "")
        return path[len(root):] if root and path.startswith(root) else path

    def _is_page_request(self, path: str, headers: Headers) -> bool:
        """A browser asking for a page (redirected to /login), not an API client (given 403)."""
        return path not in self.api and "text/html" in headers.get("accept", "")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        auth = self.server.auth
        path = self._relative(scope)
        if not auth.host_allowed(conn):
            await self._deny(scope, receive, send, 403, f"Host {conn.headers.get('host')!r} is not allowed")
            return
        if scope["type"] == "http" and scope["method"] == "OPTIONS" and conn.headers.get("origin"):
            await self._preflight(conn, send)
            return
        if path in self.public:
            await self._with_headers(scope, receive, send, conn, None, False)
            return
        try:
            result = await identify(self.server, conn)
        except ApiError as exc:
            await self._deny(scope, receive, send, exc.status, exc.message, exc.reason)
            return
        if result.user is None:
            if scope["type"] == "http" and self._is_page_request(path, conn.headers):
                here = scope.get("root_path", "") + path
                if scope["query_string"]:
                    here += "?" + scope["query_string"].decode("latin-1")
                login = auth.login_url or base_path(scope) + "login"
                target = login + ("&" if "?" in login else "?") + "next=" + quote(here, safe="")
                await self._redirect(send, target)
            else:
                await self._deny(scope, receive, send, 403, "Forbidden")
            return
        if not result.by_token:
            if not auth.origin_allowed(conn):
                status = 403 if scope["type"] == "websocket" else 404
                await self._deny(scope, receive, send, status, "Blocking Cross Origin API request")
                return
            if (scope["type"] == "http" and scope["method"] in UNSAFE_METHODS and result.check_xsrf
                    and not auth.disable_check_xsrf and not auth.xsrf_ok(conn)):
                await self._deny(scope, receive, send, 403, "'_xsrf' argument missing from POST")
                return
        scope["user"] = result.user
        scope.setdefault("state", {})["token_authenticated"] = result.by_token
        await self._with_headers(scope, receive, send, conn, result.user if result.set_cookie else None,
                                 result.by_token)
        if scope["type"] == "http" and not path.startswith(("/api/status", "/api/me")) and "no_track_activity" not in conn.query_params:
            self.server.touch()

    async def _with_headers(self, scope: Scope, receive: Receive, send: Send, conn: HTTPConnection,
                            login: User | None, by_token: bool) -> None:
        """Security headers, the login cookie after a token login, the ``_xsrf`` cookie for
        authenticated clients that lack it (JupyterLab echoes it in X-XSRFToken), and CORS."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        auth = self.server.auth
        cors = self._cors_origin(conn, by_token)
        xsrf = None if conn.cookies.get(XSRF_COOKIE) or "user" not in scope else new_xsrf()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("x-content-type-options", "nosniff")
                headers.setdefault("content-security-policy", "frame-ancestors 'self'")
                path = base_path(scope)
                if login is not None:
                    headers.append("set-cookie", auth.login_cookie(conn, login, path))
                if xsrf is not None:
                    headers.append("set-cookie", xsrf_cookie(xsrf, path))
                if cors:
                    headers["access-control-allow-origin"] = cors
                    headers.add_vary_header("Origin")
                    if auth.allow_credentials:
                        headers["access-control-allow-credentials"] = "true"
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _cors_origin(self, conn: HTTPConnection, by_token: bool = False) -> str | None:
        """The Access-Control-Allow-Origin to send, if any.

        As jupyter_server: ``*`` when allow_origin is ``*``; the Origin itself when it is the
        configured one or matches allow_origin_pat; and for a token-authenticated request when
        no allowed origin is configured (the token proves the caller may read the answer)."""
        auth = self.server.auth
        origin = conn.headers.get("origin")
        if not origin:
            return None
        if auth.allow_origin == "*":
            return "*"
        if origin == auth.allow_origin or (auth.allow_origin_pat and auth.allow_origin_pat.fullmatch(origin)):
            return origin
        if by_token and not auth.allow_origin and not auth.allow_origin_pat:
            return origin
        return None

    async def _preflight(self, conn: HTTPConnection, send: Send) -> None:
        headers = [(b"access-control-allow-headers", b"accept, content-type, authorization, x-xsrftoken"),
                   (b"access-control-allow-methods", b"GET, PUT, POST, PATCH, DELETE, OPTIONS"),
                   (b"content-length", b"0")]
        allowed = self._cors_origin(conn)
        if allowed:
            headers.append((b"access-control-allow-origin", allowed.encode()))
            if self.server.auth.allow_credentials:
                headers.append((b"access-control-allow-credentials", b"true"))
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    async def _redirect(self, send: Send, location: str) -> None:
        await send({"type": "http.response.start", "status": 302,
                    "headers": [(b"location", location.encode()), (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    async def _deny(self, scope: Scope, receive: Receive, send: Send, status: int, message: str,
                    reason: str | None = None) -> None:
        if scope["type"] == "websocket":
            await refuse_websocket(scope, send, status, message)
        else:
            await error_response(status, message, reason)(scope, receive, send)
