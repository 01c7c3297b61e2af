"""Routes of the event bus: the /api/events/subscribe websocket and POST /api/events.

Each event goes to a subscriber as one JSON text frame (see :mod:`carme.events` for its shape).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..errors import ApiError
from ..events import EventError
from ..jsonutil import dumps
from .permissions import authorized
from .server import server_of
from .util import json_object

log = logging.getLogger("carme.api.events")

SUBSCRIBER_QUEUE = 10_000


@authorized("read", "events")
async def subscribe(websocket: WebSocket) -> None:
    server = server_of(websocket)
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(SUBSCRIBER_QUEUE)

    def deliver(event: dict[str, Any]) -> None:
        if queue.full():
            log.warning("event subscriber too slow; dropping an event of %s", event["schema_id"])
            return
        queue.put_nowait(event)

    # Listening before the handshake completes: an event emitted as soon as the client sees the
    # connection open is not lost.
    remove = server.events.add_listener(deliver)
    try:
        await websocket.accept()
    except BaseException:
        remove()
        raise
    receiver = asyncio.create_task(_drain(websocket))
    try:
        while not receiver.done():
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                break
            await websocket.send_text(dumps(getter.result()).decode())
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        remove()
        receiver.cancel()


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) client frames until it disconnects."""
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
    except (WebSocketDisconnect, RuntimeError):
        return


@authorized("write", "events")
async def post_event(request: Request) -> Response:
    server = server_of(request)
    body = await json_object(request)
    assert body is not None
    schema_id, version, data = body.get("schema_id"), body.get("version"), body.get("data")
    if not isinstance(schema_id, str) or not isinstance(data, dict):
        raise ApiError(400, "an event needs schema_id (string) and data (object)", "Bad Request")
    if version is not None and not isinstance(version, int | float | str):
        raise ApiError(400, "version must be a number", "Bad Request")
    try:
        server.events.emit(schema_id, data, int(float(version)) if version is not None else None)
    except (EventError, ValueError) as exc:
        raise ApiError(400, str(exc), "Bad Request") from None
    return Response(status_code=204)


def routes() -> list[BaseRoute]:
    return [
        WebSocketRoute("/api/events/subscribe", subscribe),
        Route("/api/events", post_event, methods=["POST"]),
    ]
