"""File IDs: a stable id per file, kept across renames, moves and server restarts.

jupyter_server_fileid's job for carme: the collaboration room of a file is named by its id, so a
renamed notebook keeps its room, its history and its connected clients. Rows live in SQLite (a
setting names the file; by default in the Jupyter data dir), keyed by the served root so that two
servers sharing the data dir do not mix their files.

- Renames, moves and deletes through the contents API arrive from ``carme_on_contents_changed``
  (:meth:`FileIds.moved`, :meth:`FileIds.deleted`), folders included.
- Moves outside carme (a shell ``mv``, git) arrive from the watch extension as a deleted path and
  an added one; the file keeps its inode, so an added file whose inode belongs to an indexed path
  that no longer exists takes over that path's id (:meth:`FileIds.sync_changes`). The size and
  mtime must match too, since a file system reuses the inode of a deleted file for the next new
  one. Each change of an indexed file refreshes what is recorded (an atomic save replaces the
  inode); a move that was not seen with a current record gets a new id, as in jupyter_server_fileid.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterable
from pathlib import Path

from .dbthread import DatabaseThread

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY NOT NULL,
    root TEXT NOT NULL,
    path TEXT NOT NULL,
    ino INTEGER,
    stamp TEXT,
    UNIQUE (root, path)
);
CREATE INDEX IF NOT EXISTS files_ino ON files (root, ino);
"""


def _clean(path: str) -> str:
    return path.strip("/")


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class FileIds:
    """The file-ID index of one served root."""

    def __init__(self, db_path: str, root: Path) -> None:
        self.db = DatabaseThread(db_path, "fileids", SCHEMA)
        self.root = root
        self._root_key = str(root)

    async def open(self) -> None:
        await self.db.open()

    async def close(self) -> None:
        await self.db.close()

    def _identity(self, path: str) -> tuple[int, str] | None:
        """(inode, "size:mtime_ns") of ``path`` under the root, without following a final
        symlink; None when it is gone."""
        if not path:
            return None
        try:
            st = os.lstat(self.root / path)
        except OSError:
            return None
        return st.st_ino, f"{st.st_size}:{st.st_mtime_ns}"

    # -- queries ------------------------------------------------------------------------------

    async def get_id(self, path: str) -> str | None:
        path = _clean(path)

        def job(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT id FROM files WHERE root=? AND path=?", (self._root_key, path)).fetchone()
            return row[0] if row else None

        return await self.db.run(job)

    async def get_path(self, file_id: str) -> str | None:
        def job(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT path FROM files WHERE root=? AND id=?", (self._root_key, file_id)).fetchone()
            return row[0] if row else None

        return await self.db.run(job)

    async def index(self, path: str) -> tuple[str, bool]:
        """The id of ``path``, made if it has none: (id, whether it was made now).

        The caller checks that the file exists (through the contents manager, which knows hidden
        files and the root's limits).
        """
        path = _clean(path)

        def job(conn: sqlite3.Connection) -> tuple[str, bool]:
            ident = self._identity(path)
            ino, stamp = ident if ident else (None, None)
            row = conn.execute("SELECT id FROM files WHERE root=? AND path=?", (self._root_key, path)).fetchone()
            if row:
                conn.execute("UPDATE files SET ino=?, stamp=? WHERE id=?", (ino, stamp, row[0]))
                return row[0], False
            moved = self._moved_here(conn, path, ident)
            if moved is not None:
                return moved, False
            file_id = str(uuid.uuid4())
            conn.execute("INSERT INTO files (id, root, path, ino, stamp) VALUES (?, ?, ?, ?, ?)",
                         (file_id, self._root_key, path, ino, stamp))
            return file_id, True

        return await self.db.run(job)

    # -- changes ------------------------------------------------------------------------------

    async def moved(self, old: str, new: str) -> None:
        """``old`` (a file or a folder) is now ``new``: ids below it follow."""
        old, new = _clean(old), _clean(new)

        def job(conn: sqlite3.Connection) -> None:
            with conn:
                conn.execute("BEGIN")
                # Whatever was indexed at the destination was overwritten.
                self._delete_rows(conn, new)
                conn.execute("UPDATE files SET path=? WHERE root=? AND path=?", (new, self._root_key, old))
                conn.execute("UPDATE files SET path=? || substr(path, ?) WHERE root=? AND path LIKE ? ESCAPE '\\'",
                             (new, len(old) + 1, self._root_key, _escape_like(old) + "/%"))

        await self.db.run(job)

    async def deleted(self, path: str) -> None:
        """``path`` (a file or a folder) was deleted through the contents API."""
        path = _clean(path)

        def job(conn: sqlite3.Connection) -> None:
            with conn:
                conn.execute("BEGIN")
                self._delete_rows(conn, path)

        await self.db.run(job)

    def _delete_rows(self, conn: sqlite3.Connection, path: str) -> None:
        conn.execute("DELETE FROM files WHERE root=? AND (path=? OR path LIKE ? ESCAPE '\\')",
                     (self._root_key, path, _escape_like(path) + "/%"))

    async def sync_changes(self, changes: Iterable[tuple[str, str, str | None]]) -> list[tuple[str, str]]:
        """Follow file changes seen on disk: ``(kind, path, old_path)`` with kind added, modified,
        deleted or moved. Returns the ``(id, new path)`` of every indexed file that moved."""
        items = [(kind, _clean(path), _clean(old) if old else None) for kind, path, old in changes]

        def job(conn: sqlite3.Connection) -> list[tuple[str, str]]:
            moved: list[tuple[str, str]] = []
            with conn:
                conn.execute("BEGIN")
                for kind, path, old in items:
                    if kind == "moved" and old is not None:
                        row = conn.execute("SELECT id FROM files WHERE root=? AND path=?",
                                           (self._root_key, old)).fetchone()
                        if row:
                            self._delete_rows(conn, path)
                            conn.execute("UPDATE files SET path=? WHERE id=?", (path, row[0]))
                            self._refresh(conn, row[0], path)
                            moved.append((row[0], path))
                    elif kind in ("added", "modified"):
                        row = conn.execute("SELECT id FROM files WHERE root=? AND path=?",
                                           (self._root_key, path)).fetchone()
                        if row:
                            self._refresh(conn, row[0], path)
                            continue
                        file_id = self._moved_here(conn, path, self._identity(path))
                        if file_id is not None:
                            moved.append((file_id, path))
            return moved

        return await self.db.run(job)

    def _refresh(self, conn: sqlite3.Connection, file_id: str, path: str) -> None:
        ident = self._identity(path)
        ino, stamp = ident if ident else (None, None)
        conn.execute("UPDATE files SET ino=?, stamp=? WHERE id=?", (ino, stamp, file_id))

    def _moved_here(self, conn: sqlite3.Connection, path: str, ident: tuple[int, str] | None) -> str | None:
        """If an indexed file with this inode, size and mtime no longer exists at its own path,
        it moved to ``path``: that row takes ``path``."""
        if ident is None:
            return None
        ino, stamp = ident
        for file_id, old_path in conn.execute("SELECT id, path FROM files WHERE root=? AND ino=? AND stamp=?",
                                              (self._root_key, ino, stamp)).fetchall():
            old = self._identity(old_path)
            if old_path != path and (old is None or old[0] != ino):
                conn.execute("UPDATE files SET path=? WHERE id=?", (path, file_id))
                return str(file_id)
        return None

    async def refresh(self, path: str) -> None:
        """``path`` was written (through the contents API): record its new inode, size and mtime."""
        path = _clean(path)

        def job(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT id FROM files WHERE root=? AND path=?", (self._root_key, path)).fetchone()
            if row:
                self._refresh(conn, row[0], path)

        await self.db.run(job)
