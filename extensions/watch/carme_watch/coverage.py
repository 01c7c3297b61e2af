"""Which folders to hand the backend when some folders under the root cannot be read.

notify's recursive inotify watch walks the tree and stops at the first folder it may not read,
leaving every folder after it in walk order unwatched. So when the root has unreadable folders we
list the readable part explicitly: every folder on the way to an unreadable one (watched itself;
its own walk may stop early, harmlessly) and every fully readable subtree beside them.
"""

from __future__ import annotations

import os
from pathlib import Path


def readable_cover(root: Path) -> tuple[list[str], list[str]]:
    """(folders to watch recursively, unreadable folders) for ``root``; symlinks are not followed.

    With nothing unreadable this is ``([root], [])``.
    """
    unreadable: list[str] = []
    cover: list[str] = []
    clean: dict[str, bool] = {}
    children: dict[str, list[str]] = {}
    stack: list[tuple[str, bool]] = [(str(root), False)]
    while stack:  # iterative post-order: a folder is decided after all its subfolders
        path, expanded = stack.pop()
        if not expanded:
            try:
                with os.scandir(path) as entries:
                    subdirs = [e.path for e in entries if e.is_dir(follow_symlinks=False)]
            except PermissionError:
                unreadable.append(path)
                clean[path] = False
                continue
            except OSError:  # vanished meanwhile: nothing to watch there
                clean[path] = True
                continue
            children[path] = subdirs
            stack.append((path, True))
            stack.extend((sub, False) for sub in subdirs)
            continue
        subdirs = children.pop(path)
        if all(clean[sub] for sub in subdirs):
            clean[path] = True
        else:
            clean[path] = False
            cover.append(path)
            cover.extend(sub for sub in subdirs if clean[sub])
        for sub in subdirs:
            del clean[sub]
    if clean.get(str(root)):
        return [str(root)], unreadable
    return sorted(cover), sorted(unreadable)
