"""The room's encoding of its whole document: shared by the clients that join with an empty
document while it is unchanged, never handed out once the document changed."""

from __future__ import annotations

from pycrdt import Doc, Text

from carme_collab import protocol
from carme_collab.room import FULL_STATE_KEPT_BYTES, Peer, Room


def joiner(frames: list[bytes]) -> Peer:
    async def send(frame: bytes) -> None:
        frames.append(frame)

    return Peer(send)


async def step2_of(room: Room) -> Doc:
    """What a client joining with an empty document is sent, applied to a fresh document."""
    frames: list[bytes] = []
    peer = joiner(frames)
    room.join(peer)
    room.receive(peer, protocol.sync_step1(protocol.EMPTY_STATE))
    await peer.stop()
    (update,) = [protocol.parse(f).payload for f in frames if protocol.parse(f).sub == protocol.SYNC_STEP2]
    doc = Doc()
    doc.apply_update(update)
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
