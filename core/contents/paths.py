"""API path -> OS path, and the policy of what may be reached: root, hidden files, symlinks.

An API path is ``/``-separated and relative to the root (``"dir/a.ipynb"``; ``""`` is the root).
:class:`PathPolicy` turns it into an absolute OS path or refuses it with a 404 *before* anything
is read or written:

- anything that lexically leaves the root (``..``, whatever its URL encoding) or holds a NUL byte;
- a symlink (anywhere on the way) that resolves outside the root, unless
  ``allow_symlinks_outside_root`` (jupyter_server follows such links: a hole we close by default).

Hidden paths (a component starting with ``.``, or a directory the server cannot enter) are
refused by the callers (404 on reads, 400 on writes) unless ``allow_hidden``.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
from dataclasses import dataclass, field

from ..errors import ApiError

def normalize(path: str) -> str:
    """The canonical form of an API path: no leading/trailing or doubled slashes."""
    return "/".join(part for part in path.split("/") if part)


def join(directory: str, name: str) -> str:
    """Join an API directory path and a name."""
    return f"{directory}/{name}" if directory else name


def split(path: str) -> tuple[str, str]:
    """(parent API path, name) of an API path."""
    parent, _, name = path.rpartition("/")
    return parent, name


def outside_root(path: str) -> ApiError:
    return ApiError(404, f"{path} is outside root contents directory", "Not Found")


@dataclass
class PathPolicy:
    """Resolution and visibility rules for one root directory."""

    root: str
    allow_hidden: bool = False
    allow_symlinks_outside_root: bool = False
    hide_globs: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root = os.path.abspath(self.root)
        self.real_root = os.path.realpath(self.root)
        self._hide = re.compile("|".join(fnmatch.translate(g) for g in self.hide_globs)) if self.hide_globs else None
        self._euid = os.geteuid()
        self._groups = {os.getegid(), *os.getgroups()}

    def may(self, st: os.stat_result, mode: int) -> bool:
        """Would this process be granted ``mode`` (os.R_OK/W_OK/X_OK bits) on a file with stat ``st``?

        Computed from the mode bits instead of an ``access()`` call per file, so a listing stays
        one ``scandir`` pass. Root may read and write anything (ACLs and read-only mounts are the
        rare cases this misses; the operation itself still reports them).
        """
        if self._euid == 0:
            if mode & os.X_OK and not stat.S_ISDIR(st.st_mode):
                return bool(st.st_mode & 0o111)
            return True
        if st.st_uid == self._euid:
            shift = 6
        elif st.st_gid in self._groups:
            shift = 3
        else:
            shift = 0
        return (st.st_mode >> shift) & mode == mode

    def os_path(self, path: str) -> str:
        """The absolute OS path of an API path; 404 if it is or resolves outside the root.

        Symlinks are followed only to check where they lead: the returned path is the lexical one
        (so a link inside the root keeps its own name in models).
        """
        if "\x00" in path:
            raise outside_root(path.replace("\x00", "\\x00"))
        parts = [p for p in path.split("/") if p and p != "."]
        if ".." in parts or any(os.sep in p or (os.altsep and os.altsep in p) for p in parts):
            raise outside_root(path)
        os_path = os.path.join(self.root, *parts)
        if not self.allow_symlinks_outside_root and parts:
            real = os.path.realpath(os_path)
            if real != self.real_root and not real.startswith(self.real_root + os.sep):
                raise outside_root(path)
        return os_path

    def real_path(self, os_path: str) -> str:
        """Where a write to ``os_path`` really lands (a symlink inside the root is written through)."""
        return os.path.realpath(os_path) if os.path.islink(os_path) else os_path

    def is_hidden_path(self, path: str) -> bool:
        """Lexically hidden: some component of the API path starts with a dot."""
        return any(part.startswith(".") for part in path.split("/") if part)

    def is_hidden(self, path: str, os_path: str | None = None) -> bool:
        """Hidden as jupyter_server defines it: a dot-component, or a directory on the way that
        this process cannot read and enter."""
        if self.is_hidden_path(path):
            return True
        parts = [p for p in path.split("/") if p]
        current = self.root
        for part in parts:
            current = os.path.join(current, part)
            try:
                st = os.stat(current)
            except OSError:
                return False  # missing paths are not hidden; the caller reports them missing
            if stat.S_ISDIR(st.st_mode) and not self.may(st, os.R_OK | os.X_OK):
                return True
        return False

    def should_list(self, name: str) -> bool:
        """Shown in listings: not hidden (unless allowed) and not matching ``hide_globs``."""
        if not self.allow_hidden and name.startswith("."):
            return False
        return not (self._hide is not None and self._hide.match(name))

    def inside_root(self, real: str) -> bool:
        return real == self.real_root or real.startswith(self.real_root + os.sep)

    def link_allowed(self, os_path: str) -> bool:
        """May a symlink at ``os_path`` be listed/followed under the symlink policy?"""
        return self.allow_symlinks_outside_root or self.inside_root(os.path.realpath(os_path))

    def to_api_path(self, os_path: str) -> str:
        rel = os.path.relpath(os_path, self.root)
        return "" if rel == "." else "/".join(rel.split(os.sep))

