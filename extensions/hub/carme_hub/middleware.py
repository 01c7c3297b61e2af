"""The hub's additions to every response: ``X-JupyterHub-Version`` (the hub compares it with its
own at start-up), and on the server's ``/logout`` the clearing of the visitor's OAuth cookie."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from carme.auth import base_path

if TYPE_CHECKING:
    from carme.server import Server


class HubVersionMiddleware:
    """Echoes the hub's own version (learnt at start-up), as jupyterhub-singleuser sends its jupyterhub's."""

    def __init__(self, app: ASGIApp, server: Server) -> None:
        self.app = app
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hub = self.server.services.get("hub")
        version = hub.client.hub_version if hub is not None else ""
        if scope["type"] != "http" or not version:
            await self.app(scope, receive, send)
            return

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).setdefault("x-jupyterhub-version", version)
            await send(message)

        await self.app(scope, receive, send_with_version)


class HubLogoutMiddleware:
    """Logging out of this server forgets the visitor's hub token (the OAuth cookie), as
    jupyterhub-singleuser's logout does, while the core's ``/logout`` clears carme's own cookie
    and sends the browser on to the hub's logout. Left in place, the cookie would still let the
    browser in until the hub revoked its token and this server's cached answer about it expired."""

    def __init__(self, app: ASGIApp, server: Server) -> None:
        self.app = app
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hub = self.server.services.get("hub")
        base = base_path(scope)
        if scope["type"] != "http" or hub is None or scope["path"] != base + "logout":
            await self.app(scope, receive, send)
            return

        async def send_clearing(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                MutableHeaders(scope=message).append("set-cookie", hub.cookie(hub.client_id, "", base, 0))
            await send(message)

        await self.app(scope, receive, send_clearing)
