"""The room websocket ``/api/collaboration/room/ROOM_ID``: a thin ASGI adapter over rooms.

As jupyter-server-ydoc: the socket is accepted first, then a room that cannot be joined closes it
with 4400 (bad room id), 4404 (file not found), 4500 (server error), or 1003 with a JSON reason
(``unknown_session``: the client must reload; ``initialization_error``). Authentication and the
origin check happened in the auth middleware; the ``sessionId`` query parameter is the epoch the
client's document comes from. Only binary frames carry the protocol; text frames are ignored.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from starlette.types import Receive, Scope, Send

from .protocol import Outgoing
from .room import Peer
from .service import CollabService, JoinRefused

if TYPE_CHECKING:
    from carme.server import Server

log = logging.getLogger("carme.collab.websocket")


class RoomEndpoint:
    """The ASGI app of the room route."""

    def __init__(self, server: Server) -> None:
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        room_id = scope["path_params"]["room"]
        await send({"type": "websocket.accept"})
        service: CollabService | None = self.server.services.get("collab")
        if service is None:
            await send({"type": "websocket.close", "code": 4500, "reason": "collaboration is not running"})
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        session_id = (query.get("sessionId") or [""])[0]
        user = scope.get("user")
        username = getattr(user, "username", None)

        # carme's websocket sends a frame given in parts without joining them (a big SyncStep2).
        send_nowait = scope.get("extensions", {}).get("carme.websocket", {}).get("send_nowait")

        async def send_bytes(frame: Outgoing) -> None:
            if not isinstance(frame, bytes):
                if send_nowait is not None and send_nowait(frame):
                    return
                frame = b"".join(frame)
            await send({"type": "websocket.send", "bytes": frame})

        async def close(code: int, reason: str) -> None:
            await send({"type": "websocket.close", "code": code, "reason": reason})

        peer = Peer(send_bytes, close, username=username or "", name=getattr(user, "name", "") or "")
        try:
            open_room = await service.join(room_id, peer, session_id or None, user)
        except JoinRefused as refused:
            log.info("room %s: client %s refused (%d): %s", room_id, username, refused.code, refused.reason)
            await peer.stop()
            await close(refused.code, refused.reason)
            return
        room = open_room.room
        try:
            while True:
                message = await receive()
                kind = message["type"]
                if kind == "websocket.receive":
                    data: Any = message.get("bytes")
                    if data is not None:
                        room.receive(peer, data)
                elif kind == "websocket.disconnect":
                    break
        finally:
            service.leave(open_room, peer, username)
            await peer.stop()
