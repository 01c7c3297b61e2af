"""The hub's REST API as this server uses it: who owns a token, the OAuth code exchange, activity.

One :class:`HubClient` per server (published as ``server.services["hub"].client``). Token
lookups are cached for ``cache_seconds``, "nobody" included, keyed by the token's hash, so a
page's burst of requests costs the hub one call; a revoked token works until its entry expires.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
import time
from dataclasses import dataclass
from typing import Any

import httpx

from carme.config import ConfigError
from carme.errors import ApiError

log = logging.getLogger("carme.hub.api")

CACHE_LIMIT = 10_000  # entries; past it the expired ones are dropped, then the oldest


@dataclass(frozen=True)
class HubIdentity:
    """The hub's model of a token's owner (``GET /hub/api/user``): what this server needs of it."""

    name: str
    admin: bool
    scopes: frozenset[str]


class CodeRefused(ApiError):
    """The hub refused to trade an OAuth code for a token (used already, expired, not this client's)."""


def client_tls(certfile: str, keyfile: str, client_ca: str) -> ssl.SSLContext | None:
    """With internal SSL, how this server calls the hub: its certificate shown, the hub's
    checked against the hub's CA (``client_ca``), as jupyterhub-singleuser's make_ssl_context.
    None without a certificate: the system's CAs, nothing shown."""
    if not certfile:
        return None
    try:
        context = ssl.create_default_context(cafile=client_ca or None)
        context.load_cert_chain(certfile, keyfile or None)
    except (OSError, ssl.SSLError) as exc:  # SSLError is an OSError; named for the reader
        raise ConfigError(f"cannot call the hub with the certificate {certfile} (key {keyfile or certfile}, "
                          f"CA {client_ca or 'the system'}): {exc}") from None
    return context


class HubClient:
    """Calls the hub's API with this server's own token."""

    def __init__(self, api_url: str, token: str, cache_seconds: float, tls: ssl.SSLContext | None = None) -> None:
        self.api_url = api_url.rstrip("/")
        self.token = token
        self.cache_seconds = cache_seconds
        self.hub_version = ""
        self._cache: dict[str, tuple[float, HubIdentity | None]] = {}
        self._http = httpx.AsyncClient(timeout=30, verify=tls if tls is not None else True)

    async def close(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        """One call; an unreachable hub is a 503 naming it (jupyterhub-singleuser answers 500, but
        nothing is wrong with this server or the request: the hub is down or restarting, and the
        same request works once it is back), a hub error 502 (as HubAuth answers)."""
        headers = {"Authorization": f"token {token or self.token}"}
        try:
            response = await self._http.request(method, self.api_url + path, headers=headers, **kwargs)
        except httpx.TransportError as exc:  # refused, reset, timed out, no such host
            log.error("cannot reach the hub at %s: %s", self.api_url, exc)
            raise ApiError(503, f"The hub API at {self.api_url} cannot be reached ({exc or type(exc).__name__}): "
                           "is the hub running? Try again when it is back", "Hub unreachable") from exc
        except httpx.HTTPError as exc:  # an answer that could not be read (a bad encoding, endless redirects)
            raise ApiError(502, f"The hub API at {self.api_url} answered {method} {path} unreadably: {exc}",
                           "Bad Gateway") from exc
        if response.status_code >= 500:
            raise ApiError(502, f"The hub answered {response.status_code} to {method} {path}", "Bad Gateway")
        return response

    def _json(self, response: httpx.Response, asked: str) -> Any:
        """A success answer's JSON; one that is not JSON is a 502 naming the hub (a proxy's page,
        an API URL that is not the hub's)."""
        try:
            return response.json()
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            kind = response.headers.get("content-type") or "no Content-Type"
            raise ApiError(502, f"The hub API at {self.api_url} answered {asked} with {response.status_code} "
                           f"but not JSON ({kind}): {exc}", "Bad Gateway") from None

    async def wait_for_hub(self, tries: int = 5) -> None:
        """Reach the hub at start (as jupyterhub-singleuser: up to 5 tries, backing off), and learn
        its version for the ``X-JupyterHub-Version`` header; raises when it never answers."""
        for attempt in range(tries):
            try:
                response = await self._http.get(self.api_url)
            except httpx.HTTPError as exc:
                if attempt == tries - 1:
                    raise RuntimeError(f"the hub API at {self.api_url} does not answer: {exc}") from exc
                log.warning("the hub API at %s does not answer yet (%s); retrying", self.api_url, exc)
                await asyncio.sleep(min(2 ** attempt, 16))
                continue
            self.hub_version = response.headers.get("x-jupyterhub-version", "")
            return

    async def identify(self, token: str) -> HubIdentity | None:
        """The owner of ``token`` as the hub knows it, or None when the hub does not accept it."""
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        response = await self._request("GET", "/user", token=token)
        identity = None
        if response.status_code == 200:
            model = self._json(response, "GET /user")
            if isinstance(model, dict) and model.get("kind", "user") == "user" and isinstance(model.get("name"), str):
                identity = HubIdentity(model["name"], bool(model.get("admin")), frozenset(model.get("scopes") or ()))
        elif response.status_code not in (401, 403):  # 401/403: the hub does not accept the token
            # Any other answer (a 404 from an API URL that is not the hub's, a 400, a 429) is the
            # hub failing, not the visitor: a 502 saying what it answered.
            raise ApiError(502, f"The hub API at {self.api_url} answered {response.status_code} to GET /user "
                           f"when asked who owns a token: {response.text[:200]}", "Bad Gateway")
        if len(self._cache) >= CACHE_LIMIT:
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            # Still full (many tokens within cache_seconds, made-up ones too): the oldest go.
            for old in list(self._cache)[:len(self._cache) - CACHE_LIMIT + 1]:
                del self._cache[old]
        self._cache[key] = (now + self.cache_seconds, identity)
        return identity

    async def exchange_code(self, client_id: str, code: str, redirect_uri: str, verifier: str) -> str:
        """Trade an OAuth code for the visitor's access token (this server's token is the secret)."""
        response = await self._request("POST", "/oauth2/token", data={
            "client_id": client_id, "client_secret": self.token, "grant_type": "authorization_code",
            "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier})
        if response.status_code != 200:
            # The OAuth error answer (RFC 6749 5.2): invalid_grant for a code used or expired.
            try:
                said = response.json()
                said = f"{said['error']}: {said.get('error_description', '')}".rstrip(": ")
            except (ValueError, TypeError, KeyError):
                said = response.text[:200]
            raise CodeRefused(403, f"The hub refused the login code ({response.status_code} {said}); log in again",
                              "OAuth code refused")
        answer = self._json(response, "POST /oauth2/token")
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise ApiError(502, f"The hub API at {self.api_url} answered POST /oauth2/token without an access_token",
                           "Bad Gateway")
        return token

    async def post_activity(self, url: str, server_name: str, when: str) -> None:
        """Tell the hub when this server was last active (the body jupyterhub-singleuser sends)."""
        body = {"servers": {server_name: {"last_activity": when}}, "last_activity": when}
        try:
            response = await self._http.post(url, json=body, headers={"Authorization": f"token {self.token}"})
        except httpx.HTTPError as exc:
            raise OSError(f"cannot reach the hub at {url}: {exc}") from exc
        if response.status_code >= 400:
            raise OSError(f"the hub answered {response.status_code} to the activity report: {response.text[:200]}")
