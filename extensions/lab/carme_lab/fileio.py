"""Small blocking file helpers for the settings and workspace stores (run them off the loop)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from carme.contents.fileio import atomic_write
from carme.jsonutil import isoformat


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (carme's contents writer: temp file, fsync, rename),
    creating the folder first: readers see the old file or the new one, never a truncated one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(str(path), text.encode("utf-8"))


def file_times(stat: os.stat_result) -> tuple[str, str]:
    """(created, last_modified) of a file as jupyter_server formats timestamps."""
    created = getattr(stat, "st_birthtime", stat.st_ctime)
    return (isoformat(datetime.fromtimestamp(created, UTC)), isoformat(datetime.fromtimestamp(stat.st_mtime, UTC)))
