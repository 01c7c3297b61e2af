"""Room lifetime: opened by the session request (the client joins next), closed ``cleanup_delay``
after the last client left (or after a session nobody used), its history kept for the next join."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import websockets

from carme_collab.service import CollabService
from tests.collab.clients import eventually, joined, put_session, room_url
from tests.serving import Served

pytestmark = pytest.mark.parametrize("collab_settings", [{"collab.save_delay": None, "collab.cleanup_delay": 0.3}])


def service_of(served: Served) -> CollabService:
    return served.app.state.server.services["collab"]  # type: ignore[no-any-return]


def room_id(session: dict[str, Any]) -> str:
    return f"{session['format']}:{session['type']}:{session['fileId']}"


async def test_room_closes_after_the_last_client_and_its_edits_come_back(collab: Served, root: Path,
                                                                         collab_settings: dict[str, Any]) -> None:
    rooms = service_of(collab).rooms
    async with joined(collab.ws_url, collab.url, "demo.ipynb") as one:
        # Loaded from the file: the first version was built in the room's document (client id 0).
        assert rooms[room_id(one.session)].room.ydoc.client_id == 0
        source = one.doc.ycells[0]["source"]
        source += "  # edited"
        session = one.session
        await eventually(lambda: one.doc.ystate.get("dirty") is True, "the server to have the edit (state.dirty)")
    await eventually(lambda: room_id(session) not in rooms, "the room closed after its last client left")
    assert "edited" not in (root / "demo.ipynb").read_text()  # saves on request only: not saved
    # The history outlived the room: the same epoch joins again and finds the edit, once.
    async with joined(collab.ws_url, collab.url, "demo.ipynb", session=session) as again:
        assert rooms[room_id(session)].room.ydoc.client_id != 0  # loaded from the history: a client id of its own
        assert [str(cell["source"]) for cell in again.doc.ycells] == ["a = 1  # edited", "print(a)"]


async def test_session_opens_the_room_and_an_unused_one_closes(collab: Served, root: Path,
                                                               collab_settings: dict[str, Any]) -> None:
    rooms = service_of(collab).rooms
    session = (await put_session(collab.url, "demo.ipynb")).json()
    await eventually(lambda: room_id(session) in rooms, "the room opened by the session request")
    await eventually(lambda: room_id(session) not in rooms, "the unused room closed")

    # A file deleted between the session and the join: the join is refused as if it loaded now.
    session = (await put_session(collab.url, "demo.ipynb")).json()
    await eventually(lambda: room_id(session) in rooms, "the room opened by the session request")
    (root / "demo.ipynb").unlink()
    async with websockets.connect(room_url(collab.ws_url, session), proxy=None) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404
    assert room_id(session) not in rooms
