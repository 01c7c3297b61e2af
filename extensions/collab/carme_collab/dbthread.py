"""One SQLite connection used from one worker thread, so the event loop never waits on the disk.

The file-ID index and the update store each own one. Jobs run in submission order; a job is a
function of the connection. WAL journal with synchronous=NORMAL: a commit survives the process
being killed (SIGKILL) without an fsync per commit; only an OS crash can lose the last commits.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

log = logging.getLogger("carme.collab")

T = TypeVar("T")


class DatabaseThread:
    """A SQLite database at ``path`` (``:memory:`` allowed) served by one thread."""

    def __init__(self, path: str, name: str, schema: str) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"carme-{name}")
        self._conn: sqlite3.Connection | None = None
        self._schema = schema

    def _connect(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(self._schema)
        return conn

    async def open(self) -> None:
        """Open (and create) the database; raises a clear error when it cannot be opened."""
        try:
            self._conn = await asyncio.get_running_loop().run_in_executor(self._executor, self._connect)
        except sqlite3.Error as exc:
            raise RuntimeError(f"cannot open the database {self.path}: {exc} (on a network file system, "
                               "point the setting at a local disk)") from exc

    async def run(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``job(connection)`` on the database thread and return its result."""
        conn = self._conn
        if conn is None:
            raise RuntimeError(f"database {self.path} is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, job, conn)

    def submit(self, job: Callable[[sqlite3.Connection], object]) -> asyncio.Future[object]:
        """Queue ``job`` without waiting; the future is done when it ran."""
        conn = self._conn
        if conn is None:
            raise RuntimeError(f"database {self.path} is not open")
        return asyncio.get_running_loop().run_in_executor(self._executor, job, conn)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)
