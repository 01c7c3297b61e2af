"""A server process's own CPU time and memory, read from /proc (Linux only).

CPU is utime+stime of the server process itself (all its threads, including exited ones); kernels
are separate processes and are never counted in it. ``tree_rss`` adds the live descendants
(kernels) for the one place where the whole tree is of interest.
"""

from __future__ import annotations

import os
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` in seconds (its own threads; children are not included)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    # The command name may contain spaces: the fields after it start after the last ')'.
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def rss_bytes(pid: int) -> int:
    """VmRSS of ``pid`` in bytes (0 when the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except FileNotFoundError:
        pass
    return 0


def descendants(pid: int) -> list[int]:
    """Live descendants of ``pid`` (children, grandchildren, ...)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(text[text.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def tree_rss(pid: int) -> int:
    """RSS of ``pid`` plus all its live descendants, in bytes."""
    return rss_bytes(pid) + sum(rss_bytes(child) for child in descendants(pid))


class CpuMeter:
    """Server CPU seconds spent between ``start()`` and ``stop()``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._start = 0.0
        self.seconds = 0.0

    def __enter__(self) -> CpuMeter:
        self._start = cpu_seconds(self.pid)
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = cpu_seconds(self.pid) - self._start
