"""The browser's way in: to the hub's OAuth authorize page and back (jupyterhub-singleuser's flow).

``GET {prefix}oauth_login?next=...`` (carme's ``login_url`` under a hub) remembers where the browser
was going in a signed state cookie named after the state itself (so two tabs logging in at once do
not overwrite each other's) and sends it to the hub with a PKCE challenge. The hub logs the user in
and returns to the callback with ``code`` and ``state``; the callback checks the state against its
cookie, trades the code for the visitor's token, and sets the OAuth cookie. The state lives in the
cookie, not in this process, so a restart in the middle of a login does not lose it. A code the
hub refuses (used already, expired) starts the login once more, remembered in the new state; a
second refusal in a row is a 403 saying what the hub answered (jupyterhub-singleuser answers 500).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlparse

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from carme.auth import base_path
from carme.errors import ApiError

from .environment import OAUTH_LOGIN
from .hubapi import CodeRefused

if TYPE_CHECKING:
    from .service import HubService

STATE_SECONDS = 600  # as the hub: a login must finish within ten minutes
RETRIED = "again"  # oauth_login's query flag: this login restarts one whose code the hub refused


def _hub(request: Request) -> HubService:
    return request.app.state.server.services["hub"]  # type: ignore[no-any-return]


def _safe_next(request: Request, target: str | None) -> str:
    """Only a path under this server (no open redirect through the login)."""
    base = base_path(request.scope)
    if not target or urlparse(target).netloc or not target.startswith(base) or "\\" in target \
            or any(ord(ch) < 32 for ch in target):
        return base
    return target


def _state_cookie(hub: HubService, state: str) -> str:
    return f"{hub.client_id}-oauth-state-{state}"


async def oauth_login(request: Request) -> Response:
    hub = _hub(request)
    state = secrets.token_urlsafe(16)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    remembered = hub.sign(json.dumps({"next": _safe_next(request, request.query_params.get("next")),
                                      "verifier": verifier, "again": RETRIED in request.query_params}))
    query = urlencode({"client_id": hub.client_id, "redirect_uri": hub.callback_url, "response_type": "code",
                       "state": state, "code_challenge": challenge, "code_challenge_method": "S256"})
    response = RedirectResponse(f"{hub.host}{hub.hub_prefix}api/oauth2/authorize?{query}", status_code=302)
    response.headers.append("set-cookie", hub.cookie(_state_cookie(hub, state), remembered,
                                                     base_path(request.scope), STATE_SECONDS, state=True))
    return response


async def oauth_callback(request: Request) -> Response:
    hub = _hub(request)
    params = request.query_params
    if params.get("error"):
        raise ApiError(400, f"OAuth error from the hub: {params['error']}: {params.get('error_description', '')}",
                       "OAuth error")
    code, state = params.get("code"), params.get("state")
    if not code or not state:
        raise ApiError(400, "OAuth callback without code or state", "Bad Request")
    name = _state_cookie(hub, state)
    remembered = hub.read_cookie(request, name)
    if remembered is None:
        raise ApiError(403, "oauth state does not match. Try logging in again.", "Forbidden")
    saved = json.loads(remembered)
    path = base_path(request.scope)
    try:
        token = await hub.client.exchange_code(hub.client_id, code, hub.callback_url, saved["verifier"])
    except CodeRefused:
        if saved.get("again"):  # refused twice in a row: say so rather than loop through the hub
            raise
        # A code used already (two tabs, a callback opened twice) or expired: log in once more;
        # the hub knows the visitor and sends them straight back with a fresh code.
        query = urlencode({"next": _safe_next(request, saved["next"]), RETRIED: "1"})
        response = RedirectResponse(f"{path}{OAUTH_LOGIN}?{query}", status_code=302)
        response.headers.append("set-cookie", hub.cookie(name, "", path, 0, state=True))
        return response
    if await hub.user_for(token) is None:
        raise ApiError(502, "The hub does not recognise the token it just issued", "Bad Gateway")
    response = RedirectResponse(_safe_next(request, saved["next"]), status_code=302)
    response.headers.append("set-cookie", hub.cookie(hub.client_id, hub.sign(token), path))
    response.headers.append("set-cookie", hub.cookie(name, "", path, 0, state=True))
    return response


def callback_path(hub_callback_url: str, base_url: str) -> str:
    """The callback's path relative to the app (the hub names it in full, under the prefix)."""
    path = urlparse(hub_callback_url).path
    base = "/" + base_url.strip("/") + "/" if base_url.strip("/") else "/"
    if not path.startswith(base):
        raise ValueError(f"the OAuth callback {hub_callback_url!r} is not under this server's prefix {base!r}")
    return "/" + path[len(base):]


def routes(callback: str) -> list[BaseRoute]:
    return [Route("/" + OAUTH_LOGIN, oauth_login, methods=["GET"]),
            Route(callback, oauth_callback, methods=["GET"])]
