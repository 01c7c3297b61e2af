"""The hub service of one server (``server.services["hub"]``): who a connection is, by the hub's
word, and whether the hub's scopes let them in.

Credentials, in jupyterhub-singleuser's order: ``Authorization: token|bearer <hub token>``;
``?token=`` on websocket upgrades only; else the OAuth cookie (named after the OAuth client id,
holding the visitor's hub token, signed) that the OAuth callback sets. A header token is a
token login (no XSRF check); the cookie is ambient, so carme's XSRF and Origin checks apply.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection

from carme.auth import AuthResult, User
from carme.config import ConfigError
from carme.errors import ApiError

from .cookies import EXPIRY, check_options, set_cookie
from .environment import api_token, default_access_scopes
from .hubapi import HubClient, client_tls
from .scopes import grants_access

if TYPE_CHECKING:
    from carme.server import Server

_AUTH_HEADER = re.compile(r"(?:token|bearer)\s+(.+)", re.IGNORECASE)


@dataclass(frozen=True)
class HubUser(User):
    """A visitor the hub vouched for: carme's identity plus the hub's scopes and the token that
    proved it (JupyterLab's page config carries it back); neither is part of the identity model."""

    scopes: frozenset[str] = frozenset()
    token: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k not in ("scopes", "token")}
        data["name"] = self.name or self.username
        data["display_name"] = self.display_name or data["name"]
        return data


class HubService:
    """Identity and access for a server spawned by a hub; made at start-up when ``hub.api_url`` is set."""

    def __init__(self, server: Server) -> None:
        settings = server.settings.section("hub")
        token = api_token()
        if not token:
            raise RuntimeError("JUPYTERHUB_API_TOKEN is not set: a hub's spawner sets it (the server's own "
                               "token for the hub API)")
        self.server = server
        self.user: str = settings["user"]
        self.server_name: str = settings["server_name"]
        self.hub_prefix: str = settings["hub_prefix"]
        self.host: str = settings["host"]
        self.client_id: str = settings["client_id"]
        self.callback_url: str = settings["oauth_callback_url"]
        self.activity_url: str = settings["activity_url"]
        self.activity_interval: int = settings["activity_interval"]
        self.cookie_secure: bool = settings["cookie_secure"]
        self.cookie_host_prefix: bool = settings["cookie_host_prefix"]
        try:
            self.cookie_options = check_options(settings["cookie_options"], "hub.cookie_options")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.access_scopes: list[str] = settings["access_scopes"] or default_access_scopes(self.user, self.server_name)
        tls = client_tls(server.settings["certfile"], server.settings["keyfile"], server.settings["client_ca"])
        self.client = HubClient(settings["api_url"], token, settings["auth_cache_seconds"], tls)
        # Keyed from the server's cookie secret, which outlives restarts (a restarted server still
        # reads its visitors' cookies), but not the same key: these cookies hold other things.
        self._secret = hmac.new(server.auth.secret, b"carme-hub cookies", hashlib.sha256).digest()

    # -- cookies ------------------------------------------------------------------------------

    def sign(self, value: str) -> str:
        """``value`` with a MAC, for a cookie this server reads back (base64url, then the MAC)."""
        payload = base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")
        mac = hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()
        return f"{payload}.{mac}"

    def unsign(self, signed: str | None) -> str | None:
        """The value of a cookie :meth:`sign` made, or None when it was not made here."""
        payload, _, mac = (signed or "").partition(".")
        expected = hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()
        if not mac or not hmac.compare_digest(mac, expected):
            return None
        try:
            return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
        except ValueError:
            return None

    def cookie(self, name: str, value: str, path: str, max_age: int | None = None, *, state: bool = False) -> str:
        """A ``Set-Cookie`` value: HttpOnly, SameSite=Lax, Secure when the hub is on https, then
        the hub's cookie options (``hub.cookie_options``): all of them on the OAuth cookie, on a
        ``state`` cookie only those it leaves open (see :mod:`.cookies`). ``max_age=0`` clears the
        cookie under the same path and domain it was set with. With the hub's ``__Host-`` cookies
        on (``JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED``) the name gets that prefix, the path is
        ``/``, there is no domain and the cookie is Secure, as browsers require."""
        attributes: dict[str, Any] = {"path": path, "httponly": True, "samesite": "Lax"}
        if max_age is not None:
            attributes["max_age"] = max_age
        if self.cookie_secure or self.cookie_host_prefix:
            attributes["secure"] = True
        kept = (set(attributes) - {"samesite"}) | set(EXPIRY) if state else set()
        attributes.update((key, option) for key, option in self.cookie_options.items() if key not in kept)
        if max_age == 0:  # clearing: whatever expiry the options name
            attributes.update(dict.fromkeys(EXPIRY), max_age=0)
        if self.cookie_host_prefix:
            name = "__Host-" + name
            attributes.update(path="/", secure=True, domain=None)
        return set_cookie(name, value, attributes)

    def read_cookie(self, conn: HTTPConnection, name: str) -> str | None:
        """The value of a signed cookie :meth:`cookie` set under ``name``, or None."""
        return self.unsign(conn.cookies.get(("__Host-" if self.cookie_host_prefix else "") + name))

    # -- identity and access ---------------------------------------------------------------------

    def grants(self, user: User) -> bool:
        """Whether ``user`` may use this server: the hub vouched for them and their scopes allow it."""
        return isinstance(user, HubUser) and grants_access(user.scopes, self.access_scopes)

    async def user_for(self, token: str) -> HubUser | None:
        identity = await self.client.identify(token)
        if identity is None:
            return None
        return HubUser(identity.name, identity.name, identity.name, scopes=identity.scopes, token=token)

    async def identify(self, conn: HTTPConnection) -> AuthResult | None:
        """The visitor of ``conn``, or None (then carme's own checks go on, and its token, which
        nobody under a hub knows, would still not pass :meth:`grants`)."""
        header = conn.headers.get("authorization", "")
        match = _AUTH_HEADER.match(header)
        token = match.group(1).strip() if match else None
        if token is None and conn.scope["type"] == "websocket":
            token = conn.query_params.get("token")
        if token:
            user = await self.user_for(token)
            return AuthResult(self._admitted(user), by_token=True) if user is not None else None
        cookie_token = self.read_cookie(conn, self.client_id)
        if cookie_token:
            user = await self.user_for(cookie_token)
            return AuthResult(self._admitted(user)) if user is not None else None
        return None

    def _admitted(self, user: HubUser) -> HubUser:
        """``user`` if their scopes grant this server; else 403 on every route, pages included
        (a redirect to the hub would come straight back: the hub knows them), as the hub's own
        single-user server answers. carme_permission checks the same for every declared route."""
        if not self.grants(user):
            raise ApiError(403, f"user {user.username} is not allowed.", "Forbidden")
        return user
