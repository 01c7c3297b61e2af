"""Small blocking file helpers for the settings and workspace stores (run them off the loop)."""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from carme.jsonutil import isoformat


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file in the same folder, fsync, then rename:
    readers see the old file or the new one, never a truncated one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def file_times(stat: os.stat_result) -> tuple[str, str]:
    """(created, last_modified) of a file as jupyter_server formats timestamps."""
    created = getattr(stat, "st_birthtime", stat.st_ctime)
    return (isoformat(datetime.fromtimestamp(created, UTC)), isoformat(datetime.fromtimestamp(stat.st_mtime, UTC)))
