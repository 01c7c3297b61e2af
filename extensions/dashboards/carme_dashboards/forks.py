"""Kernels forked from a warm process: a dashboard visitor's fresh kernel without the start-up.

Most of an ipykernel's start is importing ipykernel, IPython and debugpy. A *fork server*
(:mod:`.forkserver_main`, run in the kernel's own Python) imports them once; each dashboard
kernel is then a ``fork()`` of it that only builds its kernel app: a new process per visit,
in the notebook's folder, with the visit's environment, as isolated from other visits as a
spawned kernel (its own pid, process group, sockets and key).

:class:`ForkProvisioner` is the core's local provisioner with one change: it asks a fork
server for the process instead of spawning one. It falls back to spawning whenever forking
does not fit: a kernelspec that is not ``python -m ipykernel_launcher`` (or carme's no-drop
launcher), a request whose environment changes how Python starts (``PYTHON*``, ``LD_*``),
a server that failed its warm-up or died. One server per (Python, launcher, start-up
environment), started at the service's start for the kernels app mode will need, otherwise
on first use. At most ``dashboards.max_fork_servers`` of them are kept: past it the least
recently used server with no kernel is retired (a hook that sets ``LANG`` or ``TZ`` per visitor
would otherwise start one per value); a server with kernels is kept, they die with it.

Process control stays with carme: it signals the kernel's process group itself (interrupts,
SIGTERM, SIGKILL). The server reports each kernel's exit without reaping it, so the pid cannot
be reused before carme has cleaned up and asked for the reap. When carme goes, the server
kills its kernels and exits (socket EOF, or ``PR_SET_PDEATHSIG`` if carme was killed).

A fork renews what is seeded per process (``random`` reseeds itself after a fork; the kernel's
key and session are made after it) but not the string hash seed, fixed when the server's
interpreter started: the kernels of one server share it (the README says why that is kept).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carme.kernels.provisioner import (IPYKERNEL_MODULES, NO_DROP_LAUNCHER, KernelProcess, LocalProvisioner,
                                      Provisioner)

if TYPE_CHECKING:
    from carme.kernels.connection import ConnectionInfo, PortPool
    from carme.kernels.specs import KernelSpec

log = logging.getLogger("carme.dashboards.forks")

SERVER_MAIN = Path(__file__).with_name("forkserver_main.py")
# Variables read when Python starts or a library loads (the interpreter's paths and flags, the
# locale and stdio encoding, the time zone, native libraries): a kernel that needs other values
# than its server's cannot be forked from it.
STARTUP_PREFIXES = ("PYTHON", "LD_", "MALLOC_", "OMP_", "OPENBLAS_", "MKL_", "LANG", "LC_", "TZ")
CLOSE_TIMEOUT = 5.0
WARM_UP_WAIT = 60.0  # seconds a kernel waits for its fork server's warm-up before it is spawned instead
MAX_SERVERS = 4  # a warm server holds ipykernel, IPython and debugpy imported: tens of MB each


class ForkUnavailable(RuntimeError):
    """The fork server cannot start this kernel: spawn it instead."""


class ForkedProcess:
    """A kernel forked by a server: carme's handle on it (what the local provisioner uses)."""

    def __init__(self, pid: int, server: ForkServer) -> None:
        self._pid = pid
        self.server = server
        self.returncode: int | None = None
        self.released = False  # carme is done with it: reaped once it has exited

    @property
    def pid(self) -> int:
        return self._pid

    def poll(self) -> int | None:
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:  # not reaped either: the pid is still this kernel's
            os.kill(self._pid, sig)


def _launch_form(argv: list[str]) -> tuple[str, list[str], bool] | None:
    """(launcher, its arguments, run as a module?) for an ipykernel argv; None otherwise."""
    if len(argv) >= 3 and argv[1] == "-m" and argv[2] in IPYKERNEL_MODULES:
        return argv[2], argv[3:], True
    if len(argv) >= 2 and argv[1] == str(NO_DROP_LAUNCHER):
        return argv[1], argv[2:], False
    return None


def startup_env(env: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in env.items() if k.startswith(STARTUP_PREFIXES)))


class ForkServer:
    """One fork server process and the kernels it forked."""

    def __init__(self, python: str, no_drop: bool, env: dict[str, str], cwd: Path,
                 on_idle: Callable[[], None] | None = None) -> None:
        self.python = python
        self.on_idle = on_idle  # called when its last kernel exits
        self.no_drop = no_drop
        self.env = env
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        self.ready: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.reason = ""
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[ForkedProcess]] = {}
        self._kernels: dict[int, ForkedProcess] = {}
        self.closed = False

    @property
    def idle(self) -> bool:
        """No kernel of its own running or being forked: closing it ends no visit."""
        return not self._kernels and not self._pending

    async def start(self) -> None:
        ours, theirs = socket.socketpair()
        argv = [self.python, str(SERVER_MAIN), str(theirs.fileno())]
        if self.no_drop:
            argv.append(str(NO_DROP_LAUNCHER))
        try:
            # From the loop's thread (PR_SET_PDEATHSIG follows the thread that forked it), its own
            # session so a Ctrl-C of carme's terminal does not reach it, output as a kernel's.
            self.process = subprocess.Popen(argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                                            pass_fds=(theirs.fileno(),), start_new_session=True)
        except OSError as exc:
            ours.close()
            self._unavailable(f"cannot run {self.python!r}: {exc.strerror or exc}")
            return
        finally:
            theirs.close()
        reader, self._writer = await asyncio.open_unix_connection(sock=ours, limit=2**24)
        self._reader_task = asyncio.create_task(self._read(reader), name=f"fork server {self.process.pid}")

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while line := await reader.readline():
                self._received(json.loads(line))
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
            log.warning("fork server %s: %s", self.process.pid if self.process else "?", exc)
        finally:
            self._lost()
            if self._writer is not None:
                self._writer.close()
            await self._reap()

    def _received(self, message: dict[str, Any]) -> None:
        if "ready" in message:
            if message["ready"]:
                log.info("fork server %s ready (%s)", message.get("pid"), self.python)
                self.ready.set_result(True)
            else:
                self._unavailable(str(message.get("reason", "warm-up failed")))
        elif "exit" in message:
            pid = int(message["exit"])
            kernel = self._kernels.pop(pid, None)
            if kernel is not None:
                kernel.returncode = int(message["code"])
            if kernel is None or kernel.released:  # nobody will signal it (a cancelled start) any more
                self._send({"op": "reap", "pid": pid})
            if self.idle and self.on_idle is not None:
                self.on_idle()
        elif "id" in message:
            future = self._pending.pop(int(message["id"]), None)
            if "pid" in message and (future is None or future.done()):  # its start was cancelled
                with contextlib.suppress(OSError):
                    os.killpg(int(message["pid"]), signal.SIGKILL)
            elif future is not None and not future.done():
                if "pid" in message:
                    # Held from now: its exit may be the very next line, read before fork() resumes.
                    pid = int(message["pid"])
                    future.set_result(self._kernels.setdefault(pid, ForkedProcess(pid, self)))
                else:
                    future.set_exception(ForkUnavailable(str(message.get("error", "fork failed"))))

    def _unavailable(self, reason: str) -> None:
        if not self.ready.done():
            self.reason = reason
            log.warning("no forked kernels from %s (%s): dashboard kernels start the usual way", self.python, reason)
            self.ready.set_result(False)

    def _lost(self) -> None:
        """The server is gone (closed or died): its kernels die with it (their parent poller)."""
        self._unavailable("the fork server exited")
        self.closed = True
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ForkUnavailable("the fork server exited"))
        self._pending.clear()
        for pid, kernel in list(self._kernels.items()):
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            kernel.returncode = -signal.SIGKILL
        self._kernels.clear()

    def _send(self, message: dict[str, Any]) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(json.dumps(message).encode() + b"\n")

    async def fork(self, launcher: str, argv: list[str], module: bool, cwd: Path, env: dict[str, str]) -> ForkedProcess:
        """A new kernel process; ForkUnavailable when this server cannot make one (not ready:
        :class:`ForkProvisioner` has waited for it as long as a kernel's start may)."""
        if not self.ready.done() or not self.ready.result() or self.closed:
            raise ForkUnavailable(self.reason or "the fork server is still warming up")
        request_id = next(self._ids)
        future: asyncio.Future[ForkedProcess] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        self._send({"op": "fork", "id": request_id, "launcher": launcher, "argv": argv, "module": module,
                    "cwd": str(cwd), "env": env})
        return await future  # cancelled: the reply's pid is killed when it arrives (_received)

    def release(self, kernel: ForkedProcess) -> None:
        """carme is done with the kernel: its pid is reaped now if it has exited, else when its
        exit is seen (carme's wait for it may have run out). Once: a pid reaped may be reused."""
        if kernel.released:
            return
        kernel.released = True
        if kernel.returncode is not None:
            self._send({"op": "reap", "pid": kernel.pid})

    async def close(self) -> None:
        """Stop the server (it kills any kernel still running) and wait for it to exit."""
        self.closed = True
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        if self._reader_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task

    async def _reap(self) -> None:
        """Wait for the server's process to exit (after EOF it kills its kernels and exits)."""
        process = self.process
        if process is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLOSE_TIMEOUT
        while process.poll() is None and loop.time() < deadline:
            await asyncio.sleep(0.02)
        if process.poll() is None:
            process.kill()
            await asyncio.to_thread(process.wait)


class ForkServers:
    """The fork servers of one app, one per (Python, launcher, start-up environment), at most
    ``limit`` of them once the idle ones past it are retired."""

    def __init__(self, cwd: Path, limit: int = MAX_SERVERS) -> None:
        self.cwd = cwd
        self.limit = limit  # >= 1: the dashboards service refuses a smaller dashboards.max_fork_servers
        self._servers: dict[tuple[Any, ...], ForkServer] = {}  # least recently used first
        self._retiring: set[asyncio.Future[None]] = set()
        self.closed = False

    @property
    def servers(self) -> list[ForkServer]:
        return list(self._servers.values())

    def server_for(self, argv: list[str], env: dict[str, str]) -> tuple[ForkServer, str, list[str], bool] | None:
        """The server (started now if new) for a kernel of ``argv`` and ``env``, with its launcher,
        arguments and form; None when such a kernel cannot be forked."""
        form = _launch_form(argv)
        if form is None or self.closed:
            return None
        launcher, args, module = form
        no_drop = not module
        key = (argv[0], no_drop, startup_env(env))
        server = self._servers.pop(key, None)
        if server is not None and not server.closed:
            self._servers[key] = server  # now the most recently used
        else:
            # The server's own environment is the server's plus what changes how Python starts;
            # each kernel gets its whole environment when it is forked.
            server_env = {k: v for k, v in os.environ.items() if not k.startswith(STARTUP_PREFIXES)}
            server_env.update(key[2])
            server = self._servers[key] = ForkServer(argv[0], no_drop, server_env, self.cwd, self.retire_idle)
            task = asyncio.ensure_future(server.start())
            task.add_done_callback(lambda t: t.cancelled() or t.exception() is None
                                   or server._unavailable(f"start failed: {t.exception()}"))
            self.retire_idle()
        return server, launcher, args, module

    def retire_idle(self) -> None:
        """Past ``limit`` servers, close the least recently used ones that have no kernel."""
        excess = len(self._servers) - self.limit
        for key, server in list(self._servers.items()):
            if excess <= 0:
                return
            if server.idle:
                del self._servers[key]
                excess -= 1
                log.info("fork server of %s retired: more than dashboards.max_fork_servers (%d) and unused",
                         server.python, self.limit)
                closing = asyncio.ensure_future(server.close())
                self._retiring.add(closing)
                closing.add_done_callback(self._retiring.discard)

    def warm(self, spec: KernelSpec, no_drop: bool) -> None:
        """Start the server for kernels of ``spec`` now (a kernel started later need not wait)."""
        argv = LocalProvisioner._argv(spec, Path("warm.json"), no_drop)
        self.server_for(argv, LocalProvisioner._env(spec, {}))

    def choose(self, spec: KernelSpec, chosen: Provisioner) -> Provisioner:
        """For ``KernelManager.start_kernel(provisioner=...)``: fork where carme would spawn a local
        process; a provisioner an extension chose (a container, a gateway) is left alone."""
        if type(chosen) is not LocalProvisioner or self.closed:
            return chosen
        return ForkProvisioner(chosen.ports, chosen.runtime_dir, chosen.ipykernel_no_drop, self)

    async def close(self) -> None:
        self.closed = True
        servers = list(self._servers.values())
        self._servers.clear()
        await asyncio.gather(*(server.close() for server in servers), *self._retiring, return_exceptions=True)


class ForkProvisioner(LocalProvisioner):
    """The local provisioner, with the process forked from a warm server when it can be."""

    def __init__(self, ports: PortPool, runtime_dir: Path, ipykernel_no_drop: bool, servers: ForkServers) -> None:
        super().__init__(ports, runtime_dir, ipykernel_no_drop)
        self.servers = servers

    async def launch(self, kernel_id: str, spec: KernelSpec, cwd: Path, env: dict[str, str], key: bytes,
                     reuse: ConnectionInfo | None = None) -> ConnectionInfo:
        # A server still warming up is waited for before ports are picked: they are free only
        # until the kernel binds them, and the wait should not widen that window.
        found = self.servers.server_for(self._argv(spec, Path("kernel.json"), self.ipykernel_no_drop),
                                        self._env(spec, env))
        if found is not None:
            try:
                await asyncio.wait_for(asyncio.shield(found[0].ready), WARM_UP_WAIT)
            except TimeoutError:
                log.warning("the fork server of %s is still warming up after %.0f s: starting kernel %s the usual way",
                            found[0].python, WARM_UP_WAIT, kernel_id)
        return await super().launch(kernel_id, spec, cwd, env, key, reuse)

    async def _start_process(self, argv: list[str], cwd: Path, env: dict[str, str]) -> KernelProcess:
        self._release()
        found = self.servers.server_for(argv, env)
        if found is not None:
            server, launcher, args, module = found
            try:
                return await server.fork(launcher, args, module, cwd, env)
            except ForkUnavailable:
                pass
        return await super()._start_process(argv, cwd, env)

    def _release(self) -> None:
        if isinstance(self.process, ForkedProcess):
            self.process.server.release(self.process)

    async def cleanup(self, restart: bool) -> None:
        await super().cleanup(restart)
        self._release()
