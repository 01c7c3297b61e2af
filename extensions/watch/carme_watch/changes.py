"""What a file change is, which paths are reported, and how a raw batch becomes a list of changes.

Pure functions over paths, run off the event loop (they may stat a few files): the watcher hands
them the raw ``(kind, absolute path)`` set of one batch from watchfiles.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

ChangeKind = Literal["added", "modified", "deleted", "moved"]
Source = Literal["api", "external"]

# watchfiles.Change values (1, 2, 3) -> our names.
RAW_KINDS: dict[int, ChangeKind] = {1: "added", 2: "modified", 3: "deleted"}


@dataclass(frozen=True, slots=True)
class Change:
    """One change of a file or folder under the served root.

    ``path`` is relative to the root, ``/``-separated, as the contents API names it. ``change`` is
    ``added``, ``modified``, ``deleted`` or ``moved`` (then ``old_path`` is where it was; a move
    outside carme's contents API, which the OS backends report as deleted + added, is paired by
    the file's inode when both halves arrive in one batch). ``source`` is ``api`` when the change was made through carme's contents
    API, else ``external`` (an editor, git, a kernel writing a file, ...).
    """

    path: str
    change: ChangeKind
    source: Source = "external"
    old_path: str | None = None

    def event_data(self) -> dict[str, Any]:
        """The event payload (schema ``carme_watch.events.FILE_CHANGED``)."""
        data: dict[str, Any] = {"path": self.path, "change": self.change, "source": self.source}
        if self.old_path is not None:
            data["old_path"] = self.old_path
        return data


class PathFilter:
    """Decides which relative paths are reported: not ignored, and not hidden unless allowed.

    A pattern without ``/`` is matched (fnmatch, case-sensitive) against each path component, so
    ``node_modules`` hides everything below any ``node_modules`` folder; a pattern with ``/`` is
    matched against the whole relative path (``build/*.log``).
    """

    def __init__(self, ignore: Iterable[str], allow_hidden: bool) -> None:
        self.allow_hidden = allow_hidden
        patterns = [p.strip("/") for p in ignore]
        self._names = frozenset(p for p in patterns if "/" not in p and not _is_glob(p))
        self._name_globs = tuple(p for p in patterns if "/" not in p and _is_glob(p))
        self._path_globs = tuple(p for p in patterns if "/" in p)

    def reports(self, relative: str) -> bool:
        """True if a change of ``relative`` (``/``-separated, no leading ``/``) is reported."""
        parts = relative.split("/")
        for part in parts:
            if part in self._names:
                return False
            if not self.allow_hidden and part.startswith("."):
                return False
            if any(fnmatchcase(part, glob) for glob in self._name_globs):
                return False
        return not any(fnmatchcase(relative, glob) for glob in self._path_globs)


def _is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def relative_path(root: str, path: str) -> str | None:
    """``path`` relative to ``root`` with ``/`` separators, or None for the root itself or outside it."""
    if not path.startswith(root):
        return None
    rest = path[len(root):]
    if not rest.startswith(os.sep):
        return None  # the root itself, or a sibling that shares its prefix
    rest = rest.lstrip(os.sep)
    return rest.replace(os.sep, "/") if rest else None


def coalesce(raw: Iterable[tuple[int, str]], root: Path, keep: PathFilter) -> list[Change]:
    """One change per reported path for one raw batch, sorted by path.

    watchfiles gives a set, so the order of kinds within a batch is lost; where a path was both
    added and deleted (or modified and deleted), whether it exists now decides: it was replaced
    (``modified``) or it is gone (``deleted``). Everything inside an added folder is reported as
    added too: inotify watches a new folder only once it has seen it, so what was created in it
    before (``mkdir -p a/b``, ``cp -r``, ``git clone``, a folder moved in) has no event of its own.
    """
    root_text = str(root)
    kinds: dict[str, set[ChangeKind]] = {}
    for code, path in raw:
        kind = RAW_KINDS.get(code)
        rel = relative_path(root_text, path)
        if kind is None or rel is None or not keep.reports(rel):
            continue
        kinds.setdefault(rel, set()).add(kind)
    for rel in [rel for rel, seen in kinds.items() if seen == {"added"}]:
        for inner in _inside(root, rel, keep):
            kinds.setdefault(inner, {"added"})
    changes = []
    for rel in sorted(kinds):
        seen = kinds[rel]
        if len(seen) == 1:
            (kind,) = seen
        elif "deleted" not in seen:
            kind = "added"
        else:
            kind = "modified" if os.path.lexists(root / rel) else "deleted"
        changes.append(Change(rel, kind))
    return changes


NEW_FOLDER_LIMIT = 10_000  # entries reported inside one added folder; a bigger tree is cut short


def _inside(root: Path, rel: str, keep: PathFilter) -> list[str]:
    """Reported paths below the folder ``rel`` (nothing if it is not a folder); symlinks not followed."""
    found: list[str] = []
    pending = [rel]
    while pending and len(found) < NEW_FOLDER_LIMIT:
        folder = pending.pop()
        try:
            with os.scandir(root / folder) as entries:
                for entry in entries:
                    inner = f"{folder}/{entry.name}"
                    if not keep.reports(inner):
                        continue
                    found.append(inner)
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(inner)
        except OSError:  # not a folder, gone again, or unreadable: nothing more to report
            continue
    return found[:NEW_FOLDER_LIMIT]
