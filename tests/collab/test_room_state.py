"""The room's encoding of its whole document: shared by the clients that join with an empty
document while it is unchanged, never handed out once the document changed."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pycrdt import Doc, Map, Text

from carme_collab import protocol
from carme_collab.room import FULL_STATE_KEPT_BYTES, Peer, Room
from carme_collab.store import UpdateStore


def joiner(frames: list[protocol.Outgoing]) -> Peer:
    async def send(frame: protocol.Outgoing) -> None:
        frames.append(frame)

    return Peer(send)


async def sync_of(room: Room) -> list[protocol.Frame]:
    """The sync frames a client joining with an empty document is sent after its step 1."""
    frames: list[protocol.Outgoing] = []
    peer = joiner(frames)
    room.join(peer)
    frames.clear()  # what the server sends first (its step 1) is not the answer
    await asyncio.sleep(0)
    frames.clear()
    room.receive(peer, protocol.sync_step1(protocol.EMPTY_STATE))
    await peer.stop()
    room.leave(peer)
    whole = [frame if isinstance(frame, bytes) else b"".join(frame) for frame in frames]
    return [frame for frame in map(protocol.parse, whole) if frame.kind == protocol.SYNC]


async def step2_of(room: Room) -> Doc:
    """What a client joining with an empty document is sent, applied to a fresh document."""
    (step2,) = await sync_of(room)
    assert step2.sub == protocol.SYNC_STEP2
    doc = Doc()
    doc.apply_update(step2.payload)
    return doc


async def test_a_big_document_is_encoded_once_until_it_changes() -> None:
    room = Room("text:file:x")
    text = room.ydoc.get("source", type=Text)
    text += "x" * (FULL_STATE_KEPT_BYTES + 1000)
    first = room.full_state()
    assert room.full_state() is first  # shared while unchanged
    assert len(str((await step2_of(room)).get("source", type=Text))) == FULL_STATE_KEPT_BYTES + 1000

    text += "the end"
    assert room.full_state() is not first
    joined = await step2_of(room)  # the joiner after the change has it
    assert str(joined.get("source", type=Text)).endswith("the end")
    room.close()


async def test_a_small_document_is_not_kept() -> None:
    room = Room("text:file:y")
    room.ydoc.get("source", type=Text).insert(0, "small")
    assert room.full_state() is not room.full_state()  # encoded each time: cheap, and no memory held
    assert str((await step2_of(room)).get("source", type=Text)) == "small"
    room.close()


async def test_changes_made_unobserved_are_not_missed() -> None:
    room = Room("text:file:z")
    text = room.ydoc.get("source", type=Text)
    text += "y" * (FULL_STATE_KEPT_BYTES + 10)
    before = room.full_state()
    with room.unobserved():
        text += "loaded"
    assert room.full_state() is not before
    assert str((await step2_of(room)).get("source", type=Text)).endswith("loaded")
    room.close()


async def test_a_loaded_document_is_served_from_the_encoding_the_load_built(tmp_path: Path) -> None:
    """A room filled from a built first version (as a cold load does, unobserved) gives joiners
    and the store that encoding plus the server's changes after it, not an encoding made anew:
    the joiner and a document rebuilt from the store hold everything the room holds."""
    source = Doc(client_id=0)
    source.get("source", type=Text).insert(0, "w" * (FULL_STATE_KEPT_BYTES + 10))
    built = source.get_update()
    room = Room("text:file:l")
    state = room.ydoc.get("state", type=Map)
    with room.unobserved():
        room.ydoc.apply_update(built)
        built_state = room.ydoc.get_state()
        state["hash"] = "abc"  # the load's own change, after the built version
    room.loaded(built, built_state)
    assert room.full_state()[0] is built
    raw: list[protocol.Outgoing] = []  # the SyncStep2 is that encoding after its header, not a copy
    peer = joiner(raw)
    room.join(peer)
    await asyncio.sleep(0)
    raw.clear()
    room.receive(peer, protocol.sync_step1(protocol.EMPTY_STATE))
    await peer.stop()
    room.leave(peer)
    head, sent = raw[0]
    assert sent is built and head + sent == protocol.sync_step2(built)

    frames = await sync_of(room)
    assert [frame.sub for frame in frames] == [protocol.SYNC_STEP2, protocol.SYNC_UPDATE]  # in one go
    assert frames[0].payload == built
    store = UpdateStore(str(tmp_path / "store.db"), max_bytes=1 << 30, compact_after=100)
    await store.open()
    await store.epoch("l")
    store.compact("l", room.full_state())
    history = await store.load("l")
    await store.close()
    for updates in ([frame.payload for frame in frames], history.updates):
        doc = Doc()
        for update in updates:
            doc.apply_update(update)
        assert doc.get_state() == room.ydoc.get_state()
        assert doc.get("state", type=Map)["hash"] == "abc"
        assert len(str(doc.get("source", type=Text))) == FULL_STATE_KEPT_BYTES + 10

    state["hash"] = "def"  # a change: the built encoding is not handed out any more
    assert len(room.full_state()) == 1
    assert (await step2_of(room)).get("state", type=Map)["hash"] == "def"
    room.close()


async def test_an_update_reaches_every_peer_but_the_one_it_came_from() -> None:
    room = Room("text:file:e")
    of_sender: list[bytes] = []
    of_other: list[bytes] = []
    sender, other = joiner(of_sender), joiner(of_other)
    room.join(sender)
    room.join(other)
    client = Doc()
    client.get("source", type=Text).insert(0, "hi")
    room.receive(sender, protocol.sync_update(client.get_update()))
    await sender.stop()
    await other.stop()

    def updates(frames: list[bytes]) -> list[protocol.Frame]:
        return [f for f in map(protocol.parse, frames) if f.kind == protocol.SYNC and f.sub == protocol.SYNC_UPDATE]

    assert updates(of_sender) == []  # it has it already
    (update,) = updates(of_other)
    seen = Doc()
    seen.apply_update(update.payload)
    assert str(seen.get("source", type=Text)) == str(room.ydoc.get("source", type=Text)) == "hi"
    room.close()
