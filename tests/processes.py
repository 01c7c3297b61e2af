"""Real processes in tests: a subprocess whose stderr (where carme logs) is collected line by
line, `carme serve` as such a process (the one wrapper of it), and whether a pid is alive."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from carme.plugins import installed_extensions

URL = re.compile(r"(http://127\.0\.0\.1:\d+/\S*)")
# The extensions installed with the repo, read before any test installs one of its own.
BUNDLED = tuple(sorted(installed_extensions()))


def only(*enabled: str) -> list[str]:
    """`carme serve` arguments that run the core plus ``enabled`` alone, whatever the workspace
    ships (extensions a test installs itself stay as configured)."""
    return [arg for name in BUNDLED for arg in ("--enable" if name in enabled else "--disable", name)]


class Process:
    """``command`` started in ``cwd``; :meth:`wait_for` a pattern in its log, :meth:`url` it printed."""

    def __init__(self, command: list[str], cwd: Path, env: Mapping[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(command, cwd=cwd, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        with self.proc.stderr:  # closed at EOF, i.e. when the process is gone
            for line in self.proc.stderr:
                self.lines.put(line)

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        """The first match of ``pattern`` in the log; fails (showing the log) after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log:
                match = re.search(pattern, line)
                if match:
                    return match
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.proc.poll() is not None and self.lines.empty():
                raise AssertionError(f"{pattern!r} not in the output of {self.proc.args}:\n{''.join(self.log)}")
            try:
                self.log.append(self.lines.get(timeout=min(remaining, 0.5)))
            except queue.Empty:
                pass

    def output(self) -> str:
        """Everything it logged so far."""
        while not self.lines.empty():
            self.log.append(self.lines.get())
        return "".join(self.log)

    def url(self) -> str:
        """The first http://127.0.0.1:PORT/... URL it printed."""
        return self.wait_for(URL.pattern).group(1)

    def stop(self) -> None:
        """Stop it if it still runs (SIGTERM, so `carme serve` stops its kernels; SIGKILL if that
        takes too long), and collect the rest of its log."""
        self.end()
        self.wait()

    def end(self) -> None:
        """SIGTERM if it still runs, SIGKILL if it has not exited 30 s later."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def wait(self, timeout: float = 30) -> int:
        code = self.proc.wait(timeout)
        self.reader.join(timeout)
        while not self.lines.empty():
            self.log.append(self.lines.get())
        return code


class CarmeServe(Process):
    """``carme serve ROOT --no-browser --port 0 ARGS``: the server binds a free port itself and
    prints it (:meth:`Process.url`), so a test never talks to another server that took a port
    picked in advance.

    ``program`` is how carme is run (default: this interpreter's ``-m carme.cli``; a clean venv's
    ``bin/carme``), ``prefix`` what runs it (``unshare ...``, ``setpriv ...``).
    """

    def __init__(self, root: Path, *args: str, cwd: Path, env: Mapping[str, str] | None = None,
                 program: Sequence[str] = (sys.executable, "-m", "carme.cli"), prefix: Sequence[str] = ()) -> None:
        super().__init__([*prefix, *program, "serve", str(root), "--no-browser", "--port", "0", *args], cwd, env)

    def base_url(self) -> str:
        """The printed URL without its page and token: ``http://127.0.0.1:PORT`` (plus the base URL)."""
        return re.sub(r"/(api/status|lab)(\?token=.*)?$", "", self.url())


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs; a zombie counts as dead (whoever started it reaps it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            return False
    return True


def _start_time(pid: int) -> bytes | None:
    """Field 22 of /proc/PID/stat (when it started, in clock ticks), or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return stat[stat.rindex(b")") + 2:].split()[19]


def descendants(pid: int) -> dict[int, bytes]:
    """The processes below ``pid`` (children, theirs...) with their start times, which tell them
    from a later process given the same pid."""
    children: dict[int, list[tuple[int, bytes]]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_bytes()
                fields = stat[stat.rindex(b")") + 2:].split()
                children.setdefault(int(fields[1]), []).append((int(entry.name), fields[19]))
    found: dict[int, bytes] = {}
    todo = list(children.get(pid, []))
    while todo:
        child, started = todo.pop()
        found[child] = started
        todo.extend(children.get(child, []))
    return found


def end_leftovers(processes: dict[int, bytes], grace: float = 5) -> list[int]:
    """SIGTERM, then after ``grace`` s SIGKILL, each of ``processes`` (from :func:`descendants`)
    that still runs; the pids that were left."""
    left = [pid for pid, started in processes.items() if _start_time(pid) == started and pid_alive(pid)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in left:
            if _start_time(pid) == processes[pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(pid_alive(pid) for pid in left):
            time.sleep(0.05)
    return left


def describe_processes(pids: list[int]) -> str:
    """What /proc says of each of ``pids`` (stat and command line), for a failure message."""
    lines = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().strip()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError as exc:
            stat, cmdline = f"gone ({exc.strerror})", ""
        lines.append(f"{pid}: {stat} | {cmdline}")
    return "\n".join(lines)


def kernel_processes(kernel_id: str) -> list[int]:
    """Pids of the live processes whose command line names the kernel's connection file
    (``kernel-<id>.json``): the kernel a carme somewhere started, found without asking it."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if f"kernel-{kernel_id}.json".encode() in cmdline and pid_alive(int(entry.name)):
                pids.append(int(entry.name))
    return pids
