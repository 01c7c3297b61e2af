"""A program on a pseudo-terminal, in a session of its own, and how to end that whole session.

The program is a plain subprocess whose stdin, stdout and stderr are the pty's follower side; it
starts a new session (``setsid``) and takes the pty as its controlling terminal, so job control,
Ctrl-C and SIGWINCH work as in any terminal emulator. The server keeps only the controller fd
(non-blocking, read and written on the event loop).

Ending a terminal ends its session: every process whose session id is the shell's pid (jobs in
their own process groups, ``nohup`` and ``disown``-ed ones included) gets SIGHUP and SIGCONT as a
closing terminal would send, then SIGTERM, then SIGKILL. Only a process that started a session of
its own (``setsid``, a daemon) leaves it, as it would leave any terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import struct
import subprocess
import termios
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

log = logging.getLogger("carme.terminals.process")

# Seconds each polite signal is given before the next, stronger one.
GRACE_S = 1.0
POLL_S = 0.02
_PROC = Path("/proc")


def set_size(fd: int, rows: int, cols: int) -> None:
    """Set the window size of the pty behind ``fd`` (the kernel tells the foreground job: SIGWINCH)."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _take_controlling_tty() -> None:  # runs in the child, after setsid, before exec
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def session_members(sid: int) -> list[int]:
    """Live (not zombie) processes of session ``sid`` (Linux: read from /proc; elsewhere the
    process group of the leader, which is all that can be found without /proc)."""
    if not _PROC.is_dir():
        try:
            os.killpg(sid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [sid]
    members = []
    for entry in os.scandir(_PROC):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                text = stat.read()
        except OSError:
            continue
        # pid (comm) state ppid pgrp session ...; comm may hold spaces and parentheses.
        fields = text[text.rindex(b")") + 2:].split()
        if fields[0] != b"Z" and int(fields[3]) == sid:
            members.append(int(entry.name))
    return members


class PtyProcess:
    """``argv`` running on a new pseudo-terminal of ``rows`` x ``cols``.

    ``fd`` is the controller side (non-blocking); :meth:`on_exit` calls back on the event loop
    once the program (the session leader) has exited and been reaped.
    """

    def __init__(self, argv: Sequence[str], cwd: str, env: Mapping[str, str], rows: int = 24, cols: int = 80) -> None:
        controller, follower = os.openpty()
        try:
            set_size(follower, rows, cols)
            self.proc = subprocess.Popen(
                list(argv), stdin=follower, stdout=follower, stderr=follower, cwd=cwd, env=dict(env),
                start_new_session=True, preexec_fn=_take_controlling_tty, close_fds=True)
        except BaseException:
            os.close(controller)
            raise
        finally:
            os.close(follower)  # only the child holds it now: its exit is the controller's EOF
        os.set_blocking(controller, False)
        self.fd = controller
        self.pid = self.proc.pid
        self.returncode: int | None = None
        self._exit_watch: Callable[[], None] | None = None
        self._reported = False

    # -- exit ----------------------------------------------------------------------------------

    def on_exit(self, callback: Callable[[int], None]) -> None:
        """Call ``callback(returncode)`` on the running loop once the program has exited.

        A pidfd on the loop where the OS has one (Linux >= 5.3): no thread per terminal; else a
        small daemon thread blocked in waitpid (never the loop's default executor, whose few
        threads a few idle terminals would take for good).
        """
        loop = asyncio.get_running_loop()

        def reaped() -> None:
            if not self._reported:
                self._reported = True
                self.returncode = self.proc.wait()
                callback(self.returncode)

        pidfd_open = getattr(os, "pidfd_open", None)
        if pidfd_open is not None:
            try:
                pidfd = pidfd_open(self.pid)
            except OSError:
                pidfd = -1
            if pidfd >= 0:
                def readable() -> None:
                    self._stop_watch()
                    reaped()

                def stop() -> None:
                    loop.remove_reader(pidfd)
                    os.close(pidfd)

                self._exit_watch = stop
                loop.add_reader(pidfd, readable)
                return

        def wait() -> None:
            self.proc.wait()
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody to tell
                loop.call_soon_threadsafe(reaped)

        threading.Thread(target=wait, name=f"carme-terminal-{self.pid}", daemon=True).start()

    def _stop_watch(self) -> None:
        stop, self._exit_watch = self._exit_watch, None
        if stop is not None:
            stop()

    @property
    def exited(self) -> bool:
        return self.returncode is not None

    # -- ending the session ----------------------------------------------------------------------

    def _signal_session(self, signals: Sequence[int]) -> list[int]:
        """Send ``signals`` to every live process of the session; the ones found."""
        members = session_members(self.pid)
        for pid in members:
            for sig in signals:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
        return members

    async def kill_session(self, grace: float = GRACE_S) -> None:
        """End every process of the terminal's session: SIGHUP + SIGCONT (what a closing terminal
        sends; stopped jobs get it too), SIGTERM, and SIGKILL for what is left after ``grace`` s each."""
        loop = asyncio.get_running_loop()
        for signals in ((signal.SIGHUP, signal.SIGCONT), (signal.SIGTERM, signal.SIGCONT), (signal.SIGKILL,)):
            # Reading /proc is file I/O: off the loop.
            if not await asyncio.to_thread(self._signal_session, signals):
                break
            deadline = loop.time() + grace
            while loop.time() < deadline:
                await asyncio.sleep(POLL_S)
                self.poll()
                if not await asyncio.to_thread(session_members, self.pid):
                    return
        self.poll()
        # SIGKILL cannot be ignored: a process still here was not found or is stuck in the kernel.
        if left := await asyncio.to_thread(session_members, self.pid):
            log.warning("Terminal session %d: processes %s outlived SIGKILL", self.pid, left)

    def poll(self) -> None:
        """Reap the leader if it has exited (its zombie would otherwise stay until the watch fires)."""
        if self.returncode is None and self.proc.poll() is not None:
            self.returncode = self.proc.returncode

    def close(self) -> None:
        """Stop watching and close the controller fd (idempotent)."""
        self._stop_watch()
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1

