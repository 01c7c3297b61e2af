"""``X-JupyterHub-Version`` on every response: the hub compares it with its own at start-up."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
