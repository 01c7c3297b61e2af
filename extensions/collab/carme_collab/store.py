"""The update store: each room's Yjs history on disk, so it survives a server restart.

A reconnecting client (after a restart, a network drop, a laptop that slept for hours) still
holds the history it synced; the server must hold the same history, or Yjs merges two histories of
the same content and cells are duplicated (jupyter-collaboration #545, #594, #621). So:

- every update is appended, written within ``APPEND_DELAY_S`` (the updates of that while in one
  transaction, so typing costs a write per burst, not a thread hand-off per keystroke), and reaches
  the store before the file it leads to is written (:meth:`UpdateStore.flush` before a save). An
  update lost with the process in that moment is one the clients still hold: they send it back
  when they reconnect (same epoch, same Yjs items), nothing is duplicated;
- each room's history carries an **epoch**: a random id that the session endpoint hands to clients
  as ``sessionId``. The epoch lives exactly as long as the stored history: when a room's history is
  dropped (size cap, a store that was deleted), the next session gets a new epoch and a client still
  holding the old one is told to reload instead of being merged in;
- the history is bounded: after ``compact_after`` updates a room's history is replaced by one
  update holding the whole document (the same Yjs items, so clients still merge cleanly), and when
  the file grows past ``max_bytes`` the histories of the rooms used least recently and not open
  are dropped;
- ``disk_hash`` is the hash of the file the history last matched (loaded, saved or merged): at the
  next load, a file with the same hash has not changed on disk since, so the stored history (which
  may hold edits not yet saved) wins; a different hash is an out-of-band change, merged in.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .dbthread import DatabaseThread

log = logging.getLogger("carme.collab.store")

Write = Literal["append", "compact", "hash"]
APPEND_DELAY_S = 0.05  # appended updates wait at most this long to be written together

SCHEMA = """
CREATE TABLE IF NOT EXISTS rooms (
    room TEXT PRIMARY KEY NOT NULL,
    epoch TEXT NOT NULL,
    disk_hash TEXT,
    used REAL NOT NULL,
    size INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS updates (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    room TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS updates_room ON updates (room, seq);
"""


@dataclass
class History:
    """What the store holds for one room."""

    epoch: str
    disk_hash: str | None = None
    updates: list[bytes] = field(default_factory=list)


class UpdateStore:
    """Room histories in one SQLite file."""

    def __init__(self, db_path: str, *, max_bytes: int, compact_after: int) -> None:
        self.db = DatabaseThread(db_path, "collab-store", SCHEMA)
        self.max_bytes = max_bytes
        self.compact_after = compact_after
        # (what, room, value): an update appended, a compaction (the whole history replaced) or
        # the disk hash the history now matches, written in this order by the database thread: a
        # compaction replaces exactly the updates queued before it, never one queued after, and a
        # hash is recorded only with the updates that lead to it.
        self._pending: list[tuple[Write, str, bytes | str | None]] = []
        self._flushing: asyncio.Future[object] | None = None
        self._timer: asyncio.TimerHandle | None = None  # the write of appended updates, due soon
        self._counts: dict[str, int] = {}
        self._compactions = 0
        self.is_open: Callable[[str], bool] = lambda room: False

    async def open(self) -> None:
        await self.db.open()

    async def close(self) -> None:
        await self.flush()
        await self.db.close()

    # -- epochs -------------------------------------------------------------------------------

    async def epoch(self, room: str) -> str:
        """The room's epoch, made (with an empty history) if it has none."""

        def job(conn: sqlite3.Connection) -> str:
            row = conn.execute("SELECT epoch FROM rooms WHERE room=?", (room,)).fetchone()
            if row:
                return str(row[0])
            epoch = uuid.uuid4().hex
            conn.execute("INSERT INTO rooms (room, epoch, used) VALUES (?, ?, ?)", (room, epoch, time.time()))
            return epoch

        return await self.db.run(job)

    async def load(self, room: str) -> History:
        """The room's epoch, disk hash and updates (made empty if it has none)."""
        await self.flush()

        def job(conn: sqlite3.Connection) -> History:
            row = conn.execute("SELECT epoch, disk_hash FROM rooms WHERE room=?", (room,)).fetchone()
            if not row:
                epoch = uuid.uuid4().hex
                conn.execute("INSERT INTO rooms (room, epoch, used) VALUES (?, ?, ?)", (room, epoch, time.time()))
                return History(epoch)
            conn.execute("UPDATE rooms SET used=? WHERE room=?", (time.time(), room))
            updates = [bytes(r[0]) for r in conn.execute("SELECT data FROM updates WHERE room=? ORDER BY seq",
                                                         (room,))]
            return History(str(row[0]), row[1], updates)

        history = await self.db.run(job)
        self._counts[room] = len(history.updates)
        return history

    # -- writes -------------------------------------------------------------------------------

    def _queue(self, *writes: tuple[Write, str, bytes | str | None]) -> None:
        self._pending.extend(writes)
        if self._flushing is None:
            self._write_next()

    def append(self, room: str, update: bytes) -> bool:
        """Queue one update of ``room`` (written within ``APPEND_DELAY_S``); True when the room's
        history is due for compaction."""
        self._pending.append(("append", room, update))
        self._write_soon()
        count = self._counts.get(room, 0) + 1
        self._counts[room] = count
        return count == self.compact_after

    def _write_soon(self) -> None:
        if self._timer is None and self._flushing is None:
            self._timer = asyncio.get_running_loop().call_later(APPEND_DELAY_S, self._write_next)

    def _write_next(self) -> None:
        # On the event loop: the batch is handed over whole, the thread never touches _pending.
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        self._flushing = self.db.submit(lambda conn: self._write(conn, batch))
        self._flushing.add_done_callback(self._flushed)

    def _flushed(self, future: asyncio.Future[object]) -> None:
        self._flushing = None
        if future.exception() is not None:
            log.error("writing collaboration history failed: %s", future.exception())
        if self._pending:
            self._write_soon()  # what came during the write: with what comes next

    @staticmethod
    def _write(conn: sqlite3.Connection, batch: list[tuple[Write, str, bytes | str | None]]) -> None:
        now = time.time()
        with conn:
            conn.execute("BEGIN")
            i = 0
            while i < len(batch):
                what, room, value = batch[i]
                i += 1
                if what == "hash":
                    conn.execute("UPDATE rooms SET disk_hash=? WHERE room=?", (value, room))
                    continue
                assert isinstance(value, bytes)
                if what == "compact":
                    conn.execute("DELETE FROM updates WHERE room=?", (room,))
                    conn.execute("UPDATE rooms SET size=0 WHERE room=?", (room,))
                # The updates of this room queued right after it: two statements for them all, not
                # two each (this thread holds the GIL between statements, the event loop waits).
                rows = [(room, value)]
                while i < len(batch) and batch[i][0] == "append" and batch[i][1] == room:
                    rows.append((room, batch[i][2]))
                    i += 1
                conn.executemany("INSERT INTO updates (room, data) VALUES (?, ?)", rows)
                size = sum(len(data) for _, data in rows if isinstance(data, bytes))
                conn.execute("UPDATE rooms SET size=size+?, used=? WHERE room=?", (size, now, room))

    async def flush(self) -> None:
        """Wait until every queued update is written; then keep the store under its cap if
        histories were compacted meanwhile."""
        while self._flushing is not None or self._pending:
            if self._flushing is None:
                self._write_next()  # not waiting for the timer
            assert self._flushing is not None
            await asyncio.shield(self._flushing)
            await asyncio.sleep(0)  # let _flushed run
        if self._compactions:
            self._compactions = 0
            await self.enforce_cap()

    def compact(self, room: str, state: Sequence[bytes]) -> None:
        """Replace ``room``'s history by ``state``, the whole document as updates taken now
        (:meth:`Room.full_state`): queued behind the updates it includes, ahead of those that come
        after, written in one transaction."""
        first, *rest = state
        self._counts[room] = len(state)
        self._queue(("compact", room, first), *(("append", room, update) for update in rest))
        self._compactions += 1

    def set_disk_hash(self, room: str, disk_hash: str | None) -> None:
        """Queue the hash of the file ``room``'s history now matches (after its queued updates)."""
        self._queue(("hash", room, disk_hash))

    async def drop(self, room: str) -> None:
        """Forget ``room``'s history and epoch."""
        self._counts.pop(room, None)
        await self.flush()

        def job(conn: sqlite3.Connection) -> None:
            with conn:
                conn.execute("BEGIN")
                conn.execute("DELETE FROM updates WHERE room=?", (room,))
                conn.execute("DELETE FROM rooms WHERE room=?", (room,))

        await self.db.run(job)

    async def enforce_cap(self) -> list[str]:
        """Drop the least recently used histories of closed rooms while the store is over its cap."""
        rows = await self.db.run(lambda conn: conn.execute(
            "SELECT room, size FROM rooms ORDER BY used").fetchall())
        total = sum(size for _room, size in rows)
        dropped = []
        for room, size in rows:
            if total <= self.max_bytes:
                break
            if self.is_open(room):
                continue
            await self.drop(room)
            total -= size
            dropped.append(room)
        if dropped:
            log.info("collaboration store over %d bytes: dropped the history of %d room(s)", self.max_bytes,
                     len(dropped))
            await self.db.run(lambda conn: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)"))
        return dropped

    async def total_size(self) -> int:
        row = await self.db.run(lambda conn: conn.execute("SELECT COALESCE(SUM(size), 0) FROM rooms").fetchone())
        return int(row[0])
