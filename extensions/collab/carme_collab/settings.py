"""The ``collab.*`` settings and the checked configuration the service runs with."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jupyter_core.paths import jupyter_data_dir

from carme.config import Setting

if TYPE_CHECKING:
    from carme.server import Server

FILE_ID_DB = "carme_file_id.db"
STORE_DB = "carme_collab_store.db"


def declared() -> list[Setting]:
    """The settings of the ``collab`` section."""
    return [
        Setting("file_id_db", str, None,
                f"SQLite file of the file-ID index (default: {FILE_ID_DB} in the Jupyter data dir; ':memory:' "
                "keeps ids only while the server runs). Keep it on a local disk, not NFS", nullable=True),
        Setting("store_db", str, None,
                f"SQLite file of the rooms' update history (default: {STORE_DB} in the Jupyter data dir)",
                nullable=True),
        Setting("store_max_mb", int, 512,
                "Cap of the update history in MB: past it, the histories of the least recently used closed rooms "
                "are dropped (their clients are asked to reload)", minimum=1),
        Setting("compact_after", int, 1000,
                "Updates of a room kept one by one before its history is compacted into one", minimum=1),
        Setting("save_delay", float, 1.0,
                "Seconds after the last edit before a document is saved to disk; null saves only on request",
                nullable=True, minimum=0),
        Setting("cleanup_delay", float, 60.0,
                "Seconds a room stays in memory after its last client left; null keeps rooms until the server stops",
                nullable=True, minimum=0),
        Setting("read_only_users", list, [],
                "User names that may join rooms and see edits but whose edits are dropped (the "
                "carme_collab_can_write hook decides first)"),
        Setting("server_side_execution", bool, False,
                "Tell JupyterLab to run cells through the server (POST /api/kernels/ID/execute), so outputs "
                "are written into the shared document even with no browser open"),
    ]


@dataclass(frozen=True)
class CollabConfig:
    """The checked ``collab`` settings of one app."""

    file_id_db: str
    store_db: str
    store_max_bytes: int = 512 * 1024 * 1024
    compact_after: int = 1000
    save_delay: float | None = 1.0
    cleanup_delay: float | None = 60.0
    read_only_users: tuple[str, ...] = ()
    server_side_execution: bool = False

    @classmethod
    def from_server(cls, server: Server, section: str = "collab") -> CollabConfig:
        values = server.settings.section(section)
        data_dir = jupyter_data_dir()
        return cls(
            file_id_db=values.get("file_id_db") or os.path.join(data_dir, FILE_ID_DB),
            store_db=values.get("store_db") or os.path.join(data_dir, STORE_DB),
            store_max_bytes=int(values.get("store_max_mb", 512)) * 1024 * 1024,
            compact_after=int(values.get("compact_after", 1000)),
            save_delay=values.get("save_delay", 1.0),
            cleanup_delay=values.get("cleanup_delay", 60.0),
            read_only_users=tuple(str(u) for u in values.get("read_only_users", [])),
            server_side_execution=bool(values.get("server_side_execution", False)),
        )
