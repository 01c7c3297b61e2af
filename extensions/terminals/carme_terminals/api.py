"""Routes: jupyter_server_terminals' REST API under /api/terminals and terminado's websocket at
/terminals/websocket/NAME, thin adapters over :class:`~carme_terminals.manager.TerminalManager`.

Authentication and the Origin check of websockets are the auth middleware's, as for kernel
websockets; each route declares what it needs on the ``terminals`` resource (the anchor's
authorization resource): read to list and get, write to create and delete, execute to attach.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send

from carme.api.kernel_ws import AsgiSink
from carme.api.permissions import authorized
from carme.api.util import json_object
from carme.auth import base_path
from carme.errors import ApiError, refuse_websocket
from carme.jsonutil import JSONResponse, loads

from .manager import TerminalManager, TerminalRequestError

if TYPE_CHECKING:
    from carme.server import Server

    from .terminal import Attachment, Terminal

log = logging.getLogger("carme.terminals.api")

SERVICE = "terminals"
REASONS = {400: "Bad Request", 404: "Not Found", 409: "Conflict", 500: "Internal Server Error",
           503: "Service Unavailable"}
MAX_SIZE = 10_000  # rows or columns: anything larger is not a screen


def manager_of(server: Server) -> TerminalManager:
    return server.services[SERVICE]  # type: ignore[no-any-return]


def api_error(exc: TerminalRequestError) -> ApiError:
    return ApiError(exc.status, exc.message, REASONS.get(exc.status))


def server_url(request: Request) -> str:
    """This server's URL as the client reached it (``JUPYTER_SERVER_URL`` of the new shell)."""
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"{request.url.scheme}://{host}{base_path(request.scope)}"


@authorized("read", "terminals")
async def list_terminals(request: Request) -> Response:
    return JSONResponse(manager_of(request.app.state.server).list())


@authorized("write", "terminals")
async def create_terminal(request: Request) -> Response:
    data = await json_object(request, required=False) or {}
    try:
        # Only name and cwd: the anchor passes the whole body to the shell's environment.
        terminal = await manager_of(request.app.state.server).create(data.get("name"), data.get("cwd"),
                                                                     server_url(request))
    except TerminalRequestError as exc:
        raise api_error(exc) from None
    return JSONResponse(terminal.model())  # 200, as the anchor (not 201)


@authorized("read", "terminals")
async def get_terminal(request: Request) -> Response:
    try:
        return JSONResponse(manager_of(request.app.state.server).get(request.path_params["name"]).model())
    except TerminalRequestError as exc:
        raise api_error(exc) from None


@authorized("write", "terminals")
async def delete_terminal(request: Request) -> Response:
    try:
        await manager_of(request.app.state.server).delete(request.path_params["name"])
    except TerminalRequestError as exc:
        raise api_error(exc) from None
    return Response(status_code=204)


class TerminalWebsocket:
    """``/terminals/websocket/NAME``: one browser attached to a terminal until either side ends.

    An unknown name is refused before the upgrade (404): the websocket never creates terminals.
    """

    def __init__(self, server: Server) -> None:
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        name = scope["path_params"]["name"]
        manager = self.server.services.get(SERVICE)
        terminal = manager.terminals.get(name) if isinstance(manager, TerminalManager) else None
        if terminal is None or terminal.state != "running":
            await refuse_websocket(scope, send, 404, f"Terminal not found: {name}", "Not Found")
            return
        await send({"type": "websocket.accept"})
        sink = AsgiSink(send, scope)
        client = terminal.attach(sink)  # type: ignore[arg-type]
        max_size = self.server.settings["websocket_max_message_size"]
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    sink.closed = True
                    break
                data = message.get("text")
                if data is None:
                    data = (message.get("bytes") or b"").decode("utf-8", errors="replace")
                if len(data) > max_size:
                    await sink.close(1009, "message too big")
                    break
                await self.handle(terminal, client, data)
        finally:
            await terminal.detach(client)

    async def handle(self, terminal: Terminal, client: Attachment, data: str) -> None:
        """One message from the browser; malformed or unknown ones are ignored, as terminado does."""
        try:
            message: Any = loads(data)
        except ValueError:
            log.debug("terminal %s: ignoring a message that is not JSON", terminal.name)
            return
        if not isinstance(message, list) or not message:
            return
        kind = message[0]
        if kind == "stdin" and len(message) > 1 and isinstance(message[1], str):
            await terminal.write(message[1])
        elif kind == "set_size" and len(message) > 2:
            rows, cols = message[1], message[2]
            if all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_SIZE for v in (rows, cols)):
                terminal.resize(client, rows, cols)


def routes(server: Server) -> list[BaseRoute]:
    return [
        Route("/api/terminals", list_terminals, methods=["GET"]),
        Route("/api/terminals", create_terminal, methods=["POST"]),
        Route("/api/terminals/{name}", get_terminal, methods=["GET"]),
        Route("/api/terminals/{name}", delete_terminal, methods=["DELETE"]),
        WebSocketRoute("/terminals/websocket/{name}", authorized("execute", "terminals")(TerminalWebsocket(server))),
    ]
