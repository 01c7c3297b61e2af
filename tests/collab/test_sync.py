"""Rooms over real websockets: sync, updates, awareness, RAW save, autosave, close codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import websockets
from pycrdt import Text

from carme_collab import protocol
from tests.collab.clients import eventually, joined, put_session, room_url
from tests.serving import Served


def disk_sources(root: Path, name: str = "demo.ipynb") -> list[str]:
    return ["".join(cell["source"]) for cell in json.loads((root / name).read_text())["cells"]]


async def test_two_clients_converge_on_appends_and_inserts(collab: Served, root: Path) -> None:
    async with joined(collab.ws_url, collab.url, "demo.ipynb") as one, \
            joined(collab.ws_url, collab.url, "demo.ipynb") as two:
        assert [str(c["source"]) for c in one.doc.ycells] == ["a = 1", "print(a)"]
        # Concurrent edits of both kinds: each appends a cell and types into the first one.
        one.doc.append_cell({"cell_type": "code", "source": "from one", "metadata": {}, "outputs": [],
                             "execution_count": None, "id": "one"})
        two.doc.append_cell({"cell_type": "markdown", "source": "from two", "metadata": {}, "id": "two"})
        text_one: Text = one.doc.ycells[0]["source"]
        text_two: Text = two.doc.ycells[0]["source"]
        text_one.insert(0, "# one\n")
        text_two += "  # two"

        def same() -> bool:
            return one.doc.get() == two.doc.get() and len(one.doc.ycells) == 4

        await eventually(same, "both clients to hold the same notebook")
        cells = one.doc.get()["cells"]
        assert sorted(c["id"] for c in cells[2:]) == ["one", "two"]
        assert cells[0]["source"] == "# one\na = 1  # two"
        # Autosave (save_delay 0.2 s) writes what both see.
        await eventually(lambda: disk_sources(root) == [c["source"] for c in cells], "the edits on disk")


@pytest.mark.parametrize("collab_settings", [{"collab.save_delay": None}])  # saves on request only
async def test_raw_save_replies_and_state_tracks_the_disk(collab: Served, root: Path) -> None:
    async with joined(collab.ws_url, collab.url, "demo.ipynb") as client:
        source: Text = client.doc.ycells[1]["source"]
        source += "\nprint('saved')"
        # The server marks the document dirty once the edit reached it.
        await eventually(lambda: client.doc.ystate.get("dirty") is True, "state.dirty true")
        reply = await client.save()
        assert reply == {"type": "save", "responseTo": 1, "status": "success"}
        assert disk_sources(root)[1] == "print(a)\nprint('saved')"
        await eventually(lambda: client.doc.ystate.get("dirty") is False and client.doc.ystate.get("hash"),
                         "state.dirty false and state.hash set")
        assert client.doc.ystate["path"] == "demo.ipynb"
        # Nothing changed since: an explicit save still answers (and writes the same content).
        assert (await client.save())["status"] in ("success", "skipped")


async def test_text_file_room(collab: Served, root: Path) -> None:
    (root / "notes.txt").write_text("line one\r\nline two\r\n")
    async with joined(collab.ws_url, collab.url, "notes.txt", "file", "text") as client:
        assert client.doc.get() == "line one\nline two\n"
        client.doc.set("line one\nline two\nline three\n")
        await eventually(lambda: (root / "notes.txt").read_text() == "line one\nline two\nline three\n",
                         "the text file saved")


async def test_awareness_is_relayed_and_removed_when_a_client_leaves(collab: Served) -> None:
    state = {"user": {"username": "u1", "name": "User One"}}
    payload = protocol.encode_awareness([protocol.AwarenessEntry(4242, 1, state, json.dumps(state).encode())])
    async with joined(collab.ws_url, collab.url, "demo.ipynb") as watcher:
        async with joined(collab.ws_url, collab.url, "demo.ipynb") as talker:
            await talker.ws.send(protocol.awareness_frame(payload))

            def seen(client_id: int, present: bool) -> bool:
                for raw in watcher.channel.awareness:
                    for entry in protocol.parse_awareness(raw):
                        if entry.client_id == client_id and (entry.state is not None) == present:
                            return True
                return False

            await eventually(lambda: seen(4242, True), "the other client's awareness state")
        await eventually(lambda: seen(4242, False), "the awareness removal after the client left")


async def test_a_late_joiner_gets_the_awareness_of_those_present(collab: Served) -> None:
    state = {"user": {"username": "early"}}
    payload = protocol.encode_awareness([protocol.AwarenessEntry(77, 3, state, json.dumps(state).encode())])
    async with joined(collab.ws_url, collab.url, "demo.ipynb") as early:
        await early.ws.send(protocol.awareness_frame(payload))
        await eventually(lambda: early.channel.awareness, "the echo of our own awareness")
        async with joined(collab.ws_url, collab.url, "demo.ipynb") as late:
            await eventually(lambda: any(e.client_id == 77 for raw in late.channel.awareness
                                         for e in protocol.parse_awareness(raw)), "the early client's state")


async def test_unknown_session_closes_1003_reloadable(collab: Served) -> None:
    session = (await put_session(collab.url, "demo.ipynb")).json()
    async with websockets.connect(room_url(collab.ws_url, session, session_id="stale-epoch"), proxy=None) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003
    reason = json.loads(closed.value.rcvd.reason)
    assert reason == {"reason": "unknown_session", "sessionId": "stale-epoch", "reloadable": True}


async def test_missing_file_closes_4404_and_bad_room_4400(collab: Served, root: Path) -> None:
    session = (await put_session(collab.url, "demo.ipynb")).json()
    (root / "demo.ipynb").unlink()
    for url, code in ((room_url(collab.ws_url, session), 4404),
                      (f"{collab.ws_url}/api/collaboration/room/yaml:notebook:x?token=test-token", 4400)):
        async with websockets.connect(url, proxy=None) as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == code


async def test_room_websocket_needs_authentication(collab: Served) -> None:
    session = (await put_session(collab.url, "demo.ipynb")).json()
    url = room_url(collab.ws_url, session, token="wrong")
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(url, proxy=None):
            pass
    assert refused.value.response.status_code == 403


async def test_global_awareness_room(collab: Served) -> None:
    url = f"{collab.ws_url}/api/collaboration/room/JupyterLab:globalAwareness?token=test-token"
    state = {"user": {"username": "g"}, "current": "notebook:demo.ipynb"}
    payload = protocol.encode_awareness([protocol.AwarenessEntry(9, 1, state, json.dumps(state).encode())])
    async with websockets.connect(url, proxy=None) as one, websockets.connect(url, proxy=None) as two:
        await one.send(protocol.awareness_frame(payload))
        while True:
            frame = protocol.parse(await two.recv())
            if frame.kind == protocol.AWARENESS and any(e.client_id == 9 for e in protocol.parse_awareness(frame.payload)):
                break
