"""The paths known to exist under the root, to tell a replaced file from a new one.

An atomic save (write a temporary file, rename it over the target: carme's own contents API,
vim, many editors) reaches the watcher as the target being *added*. With the set of reported paths
that existed, such an "added" becomes "modified". The set holds only reported paths (ignored and
hidden folders are not walked) and is only touched on the watcher's thread.

It also keeps each path's inode, so that a file moved outside carme (``mv``, a file manager),
which the OS backends report as deleted + added, is reported as one ``moved`` when both halves
fall in one batch and the added path has the inode and modification time the deleted one had
(:meth:`KnownPaths.fold_moves`; the time too, because a file system hands a freed inode to the next
new file at once, and a rename keeps the time where a new file gets its own).
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

from .changes import Change, PathFilter

log = logging.getLogger("carme.watch")

Identity = tuple[int, int]  # (inode, mtime_ns) of a path
MAX_KNOWN = 1_000_000  # past this many paths the set is dropped: "added" is then reported as is


class KnownPaths:
    """Relative paths that exist under the root, kept current from each batch."""

    def __init__(self, root: Path, keep: PathFilter) -> None:
        self.root = root
        self.keep = keep
        self.paths: set[str] | None = None
        self.inodes: dict[str, Identity] = {}  # path -> (inode, mtime_ns), for the paths in ``paths``
        self._deleted: dict[Identity, str] = {}  # identity -> path, deleted in the current batch

    def scan(self) -> None:
        """Walk the root (reported paths only); called when watching (re)starts."""
        found: set[str] = set()
        inodes: dict[str, Identity] = {}
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
                        try:
                            stat = entry.stat(follow_symlinks=False)
                            inodes[rel] = (stat.st_ino, stat.st_mtime_ns)
                        except OSError:
                            pass
                        if len(found) > MAX_KNOWN:
                            log.info("more than %d paths under %s: new and replaced files are both reported "
                                     "as added", MAX_KNOWN, self.root)
                            self.paths = None
                            self.inodes = {}
                            return
                        if entry.is_dir(follow_symlinks=False):
                            pending.append(rel)
            except OSError:
                continue  # unreadable or gone: its paths are simply not known
        self.paths = found
        self.inodes = inodes

    def apply(self, changes: list[Change]) -> list[Change]:
        """Relabel "added" of a path that existed as "modified", and update the set."""
        if self.paths is None:
            return changes
        out = []
        gone: list[str] = []
        self._deleted = {}
        for change in changes:
            if change.change == "added" and change.path in self.paths:
                change = replace(change, change="modified")
            if change.change == "deleted":
                self.paths.discard(change.path)
                inode = self.inodes.pop(change.path, None)
                if inode is not None:
                    self._deleted[inode] = change.path
                gone.append(change.path + "/")
            else:
                self.paths.add(change.path)
                try:
                    stat = os.lstat(self.root / change.path)
                    self.inodes[change.path] = (stat.st_ino, stat.st_mtime_ns)
                except OSError:
                    self.inodes.pop(change.path, None)  # gone again already
            out.append(change)
        if gone:  # what was inside a deleted folder is gone too; one pass for the whole batch
            prefixes = tuple(gone)
            if any(p.startswith(prefixes) for p in self.paths):
                self.paths = {p for p in self.paths if not p.startswith(prefixes)}
                self.inodes = {p: i for p, i in self.inodes.items() if not p.startswith(prefixes)}
        return out

    def fold_moves(self, changes: list[Change]) -> list[Change]:
        """Fold an external deleted + added of the same inode (this batch, after :meth:`apply`)
        into one ``moved`` at the new path. Moves through carme's contents API are already
        ``moved`` (source ``api``) and left alone."""
        if not self._deleted:
            return changes
        out = []
        moved: set[str] = set()
        for change in changes:
            if change.change == "added" and change.source == "external":
                identity = self.inodes.get(change.path)
                old = self._deleted.get(identity) if identity is not None else None
                if old is not None and old not in moved and old != change.path:
                    moved.add(old)
                    change = replace(change, change="moved", old_path=old)
            out.append(change)
        self._deleted = {}
        return [c for c in out if not (c.change == "deleted" and c.source == "external" and c.path in moved)]
