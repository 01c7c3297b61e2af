"""The paths known to exist under the root, to tell a replaced file from a new one.

An atomic save (write a temporary file, rename it over the target: carme's own contents API,
vim, many editors) reaches the watcher as the target being *added*. With the set of reported paths
that existed, such an "added" becomes "modified". The set holds only reported paths (ignored and
hidden folders are not walked) and is only touched on the watcher's thread.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

from .changes import Change, PathFilter

log = logging.getLogger("carme.watch")

MAX_KNOWN = 1_000_000  # past this many paths the set is dropped: "added" is then reported as is


class KnownPaths:
    """Relative paths that exist under the root, kept current from each batch."""

    def __init__(self, root: Path, keep: PathFilter) -> None:
        self.root = root
        self.keep = keep
        self.paths: set[str] | None = None

    def scan(self) -> None:
        """Walk the root (reported paths only); called when watching (re)starts."""
        found: set[str] = set()
        pending = [""]
        while pending:
            folder = pending.pop()
            try:
                with os.scandir(self.root / folder if folder else self.root) as entries:
                    for entry in entries:
                        rel = f"{folder}/{entry.name}" if folder else entry.name
                        if not self.keep.reports(rel):
                            continue
                        found.add(rel)
                        if len(found) > MAX_KNOWN:
                            log.info("more than %d paths under %s: new and replaced files are both reported "
                                     "as added", MAX_KNOWN, self.root)
                            self.paths = None
                            return
                        if entry.is_dir(follow_symlinks=False):
                            pending.append(rel)
            except OSError:
                continue  # unreadable or gone: its paths are simply not known
        self.paths = found

    def apply(self, changes: list[Change]) -> list[Change]:
        """Relabel "added" of a path that existed as "modified", and update the set."""
        if self.paths is None:
            return changes
        out = []
        gone: list[str] = []
        for change in changes:
            if change.change == "added" and change.path in self.paths:
                change = replace(change, change="modified")
            if change.change == "deleted":
                self.paths.discard(change.path)
                gone.append(change.path + "/")
            else:
                self.paths.add(change.path)
            out.append(change)
        if gone:  # what was inside a deleted folder is gone too; one pass for the whole batch
            prefixes = tuple(gone)
            if any(p.startswith(prefixes) for p in self.paths):
                self.paths = {p for p in self.paths if not p.startswith(prefixes)}
        return out
