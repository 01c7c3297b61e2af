"""Telling changes made through carme's contents API from out-of-band edits.

The core calls ``carme_on_contents_changed`` right after each contents API change is on disk; the
watch plugin records it here (path, time, and the file's mtime and size after the write). When the
watcher later sees a change of that path within a short window, and for a written file the file
still has the recorded mtime and size, the change is tagged ``source: "api"``; anything else is
``external``. So an editor saving the same file a moment after a carme save is still reported as
external (its write changes mtime or size), and a path carme wrote long ago is never claimed.

A rename through the API whose old and new paths both show up in one batch is reported as one
``moved`` change.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from .changes import Change

# Contents actions that leave a file at ``path`` / that remove what was at the path.
WRITES = frozenset({"create", "save", "upload", "copy", "rename"})
MAX_RECORDS = 10_000

Role = Literal["written", "removed"]


@dataclass(frozen=True, slots=True)
class ApiWrite:
    """One path changed through the contents API."""

    role: Role
    at: float
    is_dir: bool = False
    stamp: tuple[int, int] | None = None  # (mtime_ns, size) of a written file
    moved_from: str | None = None  # for the new path of a rename


def _stamp(path: Path) -> tuple[bool, tuple[int, int] | None]:
    try:
        st = path.stat()
    except OSError:
        return False, None
    is_dir = os.path.isdir(path)
    return is_dir, None if is_dir else (st.st_mtime_ns, st.st_size)


def _clean(path: str) -> str:
    return path.strip("/")


class ApiWrites:
    """Recent contents API changes of one app, by relative path.

    Recorded on the event loop, read (``snapshot``) on the watcher's thread: a lock guards both.
    """

    def __init__(self, root: Path, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.root = root
        self.window_s = window_s
        self._clock = clock
        self._records: dict[str, ApiWrite] = {}
        self._lock = threading.Lock()

    def record(self, action: str, path: str, source_path: str | None = None) -> None:
        """Remember one contents API change (the arguments of ``carme_on_contents_changed``).

        Stats the written path once: a single syscall on a file the API has just written, cheaper
        than a thread hop, and it must be recorded before the watcher's batch is processed.
        """
        now = self._clock()
        path = _clean(path)
        is_dir, stamp = _stamp(self.root / path) if action in WRITES else (True, None)
        with self._lock:
            self._prune(now)
            if source_path is not None and action == "rename":
                self._put(_clean(source_path), ApiWrite("removed", now, is_dir=is_dir))
            if action == "delete":
                self._put(path, ApiWrite("removed", now, is_dir=True))  # its children may be reported too
            elif action in WRITES:
                moved_from = _clean(source_path) if action == "rename" and source_path is not None else None
                self._put(path, ApiWrite("written", now, is_dir, stamp, moved_from))

    def _put(self, path: str, write: ApiWrite) -> None:
        self._records.pop(path, None)  # re-insert: the dict stays ordered oldest first
        self._records[path] = write
        while len(self._records) > MAX_RECORDS:
            del self._records[next(iter(self._records))]

    def _prune(self, now: float) -> None:
        while self._records:
            oldest = next(iter(self._records))
            if now - self._records[oldest].at <= self.window_s:
                break
            del self._records[oldest]

    def snapshot(self) -> dict[str, ApiWrite]:
        """The live records, copied, for :func:`tag` to use off the event loop."""
        with self._lock:
            self._prune(self._clock())
            return dict(self._records)


def _find(records: Mapping[str, ApiWrite], path: str) -> tuple[ApiWrite | None, bool]:
    """The record for ``path`` or for a folder above it: (record, whether it is the path's own)."""
    own = records.get(path)
    if own is not None:
        return own, True
    parts = path.split("/")
    for end in range(len(parts) - 1, 0, -1):
        above = records.get("/".join(parts[:end]))
        if above is not None and above.is_dir:
            return above, False
    return None, False


def _from_api(change: Change, records: Mapping[str, ApiWrite], root: Path) -> bool:
    record, own = _find(records, change.path)
    if record is None:
        return False
    if change.change == "deleted":
        return record.role == "removed"
    if record.role != "written":
        return False
    if not own or record.stamp is None:
        return True
    _is_dir, stamp = _stamp(root / change.path)
    return stamp == record.stamp


def tag(changes: list[Change], records: Mapping[str, ApiWrite], root: Path) -> list[Change]:
    """Set ``source`` on each change and fold an API rename's delete + add into one ``moved``.

    Runs off the event loop: it stats the files whose records carry a stamp.
    """
    if not records:
        return changes
    tagged = [replace(c, source="api") if _from_api(c, records, root) else c for c in changes]
    deleted_by_api = {c.path for c in tagged if c.change == "deleted" and c.source == "api"}
    folded: set[str] = set()
    out: list[Change] = []
    for change in tagged:
        record = records.get(change.path)
        old = record.moved_from if record is not None else None
        if change.change == "added" and change.source == "api" and old is not None and old in deleted_by_api:
            out.append(Change(change.path, "moved", "api", old_path=old))
            folded.add(old)
        else:
            out.append(change)
    return [c for c in out if not (c.change == "deleted" and c.path in folded)]
