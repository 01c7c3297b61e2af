"""The update store on its own (real SQLite files): ordered compaction, the size cap, epochs."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from pycrdt import Doc, Text

from carme_collab.store import UpdateStore
from tests.collab.clients import eventually


async def test_compaction_keeps_the_document_and_bounds_the_history(tmp_path: Path) -> None:
    store = UpdateStore(str(tmp_path / "store.db"), max_bytes=1 << 20, compact_after=5)
    await store.open()
    doc = Doc()
    text = doc.get("t", type=Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    epoch = await store.epoch("room")
    for i in range(23):
        text += f"{i},"
        if store.append("room", updates[-1]):
            store.compact("room", [doc.get_update()])
    text += "after"  # queued after the last compaction: kept too
    store.append("room", updates[-1])
    history = await store.load("room")
    assert history.epoch == epoch
    assert len(history.updates) <= 5
    again = Doc()
    for update in history.updates:
        again.apply_update(update)
    assert str(again.get("t", type=Text)) == str(text)
    await store.close()


async def test_cap_drops_closed_rooms_least_recently_used_first(tmp_path: Path) -> None:
    store = UpdateStore(str(tmp_path / "store.db"), max_bytes=1 << 20, compact_after=1000)
    await store.open()
    open_rooms = {"open"}
    store.is_open = lambda room: room in open_rooms
    epochs = {room: await store.epoch(room) for room in ("old", "open", "new")}
    for room in ("old", "open", "new"):
        store.append(room, b"\x00" * 400_000)
        await store.flush()
    dropped = await store.enforce_cap()
    assert dropped == ["old"]  # the open room is never dropped, the newer one fits
    assert (await store.load("old")).epoch != epochs["old"]  # a new epoch: its clients reload
    assert (await store.load("open")).epoch == epochs["open"]
    assert await store.total_size() <= 1 << 20
    await store.close()


async def test_appends_are_written_together_soon_and_at_once_on_flush(tmp_path: Path) -> None:
    """Appended updates are not handed to the database thread one by one: a burst is written in
    one go a moment later (or at once by flush, which a save awaits), and nothing is lost."""
    path = tmp_path / "store.db"
    store = UpdateStore(str(path), max_bytes=1 << 20, compact_after=1000)
    await store.open()
    await store.epoch("room")

    def stored() -> int:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM updates").fetchone()[0])

    for i in range(5):
        store.append("room", bytes([i]) * 10)
    assert stored() == 0  # queued, no write yet
    await eventually(lambda: stored() == 5, "the burst written without a flush")
    store.append("room", b"last")
    await store.flush()
    assert stored() == 6
    assert (await store.load("room")).updates == [bytes([i]) * 10 for i in range(5)] + [b"last"]
    # Interleaved with another room's, a compaction and a hash: each room's own, in order, sized.
    await store.epoch("other")
    store.append("other", b"o1")
    store.append("room", b"r7")
    store.compact("other", [b"whole", b"after"])
    store.append("other", b"o2")
    store.set_disk_hash("other", "h")
    store.append("room", b"r8")
    await store.flush()
    other = await store.load("other")
    assert (other.updates, other.disk_hash) == ([b"whole", b"after", b"o2"], "h")
    assert (await store.load("room")).updates[-3:] == [b"last", b"r7", b"r8"]
    with contextlib.closing(sqlite3.connect(path)) as conn:
        sizes = dict(conn.execute("SELECT room, size FROM rooms").fetchall())
    assert sizes == {"room": 50 + 4 + 4, "other": 5 + 5 + 2}
    await store.close()
