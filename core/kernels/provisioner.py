"""Provisioners: how a kernel process is launched, signalled and cleaned up.

An extension provisions kernels its own way (a container, a remote host) by answering the
firstresult hook :func:`carme.hooks.carme_kernel_provisioner` with an object that follows
:class:`Provisioner`. The built-in :class:`LocalProvisioner` answers last: it spawns the spec's
argv as a local process in its own process group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import string
import subprocess
import sys
from pathlib import Path
from typing import Protocol, runtime_checkable

from .connection import ConnectionInfo, PortPool, new_connection_info, write_connection_file
from .specs import KernelSpec

log = logging.getLogger("carme.kernels.provisioner")

NO_DROP_LAUNCHER = Path(__file__).with_name("ipykernel_no_drop.py")
IPYKERNEL_MODULES = ("ipykernel_launcher", "ipykernel")
PYTHON_NAMES = {"python", f"python{sys.version_info[0]}", f"python{sys.version_info[0]}.{sys.version_info[1]}"}


class KernelProcess(Protocol):
    """What the local provisioner needs of a started process (``subprocess.Popen`` is one)."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None:
        """None while it runs, else its exit code."""
        ...

    def send_signal(self, sig: int) -> None: ...


class KernelLaunchError(RuntimeError):
    """The kernel could not be started at all (its program is missing, not executable; a remote
    service refused or is unreachable).

    ``status`` is the HTTP status a client is answered with (500: the server's fault) and
    ``reason`` its short phrase: a remote provisioner keeps the remote service's 4xx, or says 503
    when the service is down.
    """

    def __init__(self, message: str, status: int = 500, reason: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


@runtime_checkable
class Provisioner(Protocol):
    """Launches and controls one kernel's process (one provisioner object per kernel).

    :meth:`launch` is called at start, on restart (``reuse`` is the previous connection info:
    keep its ports and key so connected clients keep working) and on a retry after an early
    death (``reuse`` is None: pick new ports).

    Optional: a class attribute ``slow_start = True`` says its launches can take long (a pod
    being scheduled); with the ``pending_kernels`` setting left at null, a start request for such
    a kernel is answered at once with the kernel ``starting`` (read with ``getattr``, so
    provisioners without it stay valid).

    Optional: an attribute ``transport``, a :class:`~carme.kernels.transport.KernelTransport`
    (read with ``getattr`` after each launch; absent or None: ZMQ sockets at the connection info).
    A provisioner that receives the kernel's messages itself (over a remote service's websocket)
    hands them to carme through it, and takes carme's, without local sockets in between.
    """

    async def launch(self, kernel_id: str, spec: KernelSpec, cwd: Path, env: dict[str, str], key: bytes,
                     reuse: ConnectionInfo | None = None) -> ConnectionInfo:
        """Start the kernel process; return its connection info (ports, ip, key, transport)."""
        ...

    @property
    def pid(self) -> int | None:
        """The process id, when it is a local process (for tests and logs)."""
        ...

    async def poll(self) -> int | None:
        """None while the process runs, else its exit code."""
        ...

    async def send_signal(self, signum: int) -> None:
        """Send a signal to the kernel (its whole process group for the local provisioner)."""
        ...

    async def kill(self) -> None:
        """Kill the kernel at once (SIGKILL)."""
        ...

    async def wait(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` seconds for the process to exit; its exit code, or None."""
        ...

    async def cleanup(self, restart: bool) -> None:
        """Release what the process used; keep the connection file and ports when ``restart``."""
        ...


class LocalProvisioner:
    """A kernel as a local subprocess in its own process group, connection file 0600."""

    def __init__(self, ports: PortPool, runtime_dir: Path, ipykernel_no_drop: bool = False) -> None:
        self.ports = ports
        self.runtime_dir = runtime_dir
        self.ipykernel_no_drop = ipykernel_no_drop
        self.process: KernelProcess | None = None
        self.connection_file: Path | None = None
        self.info: ConnectionInfo | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    async def launch(self, kernel_id: str, spec: KernelSpec, cwd: Path, env: dict[str, str], key: bytes,
                     reuse: ConnectionInfo | None = None) -> ConnectionInfo:
        self.connection_file = self.runtime_dir / f"kernel-{kernel_id}.json"
        argv = self._argv(spec, self.connection_file, self.ipykernel_no_drop)
        full_env = self._env(spec, env)
        # As jupyter_client: the notebook's path in the connection file too (``jupyter_session``),
        # for tools that find a kernel's notebook from its connection file.
        extra = {"jupyter_session": env["JPY_SESSION_NAME"]} if env.get("JPY_SESSION_NAME") else {}
        if reuse is None:
            if self.info is not None:
                self.ports.release(self.info)
            with self.ports.holding() as ports:  # held until just before the spawn
                self.info = new_connection_info(ports, self.ports.ip, key, spec.name)
                await asyncio.to_thread(write_connection_file, self.connection_file, self.info | extra)
        else:
            self.info = reuse
            await asyncio.to_thread(write_connection_file, self.connection_file, self.info | extra)
        try:
            self.process = await self._start_process(argv, cwd, full_env)
        except OSError as exc:
            raise KernelLaunchError(f"cannot run {argv[0]!r} of kernelspec {spec.name!r}: "
                                    f"{exc.strerror or exc}") from None
        info = self.info
        log.debug("launched kernel %s (pid %s): %s", kernel_id, self.process.pid, argv)
        return info

    @staticmethod
    def _argv(spec: KernelSpec, connection_file: Path, ipykernel_no_drop: bool = False) -> list[str]:
        values = {"connection_file": str(connection_file), "prefix": sys.prefix,
                  "resource_dir": str(spec.resource_dir or "")}
        argv = [part.format(**values) if "{" in part else part for part in spec.argv]
        if argv[0] in PYTHON_NAMES:  # "python" in a kernelspec means the server's interpreter
            argv[0] = sys.executable
        if ipykernel_no_drop and argv[1:2] == ["-m"] and argv[2:3] and argv[2] in IPYKERNEL_MODULES:
            # The same ipykernel, started so that its iopub socket never drops output.
            argv = [argv[0], str(NO_DROP_LAUNCHER), *argv[3:]]
        return argv

    @staticmethod
    def _env(spec: KernelSpec, extra: dict[str, str]) -> dict[str, str]:
        env = dict(os.environ)
        # kernel.json env values may refer to the server's environment: "${PATH}:/opt/bin"
        env.update({k: string.Template(v).safe_substitute(os.environ) for k, v in spec.env.items()})
        env.update(extra)
        env["JPY_PARENT_PID"] = str(os.getpid())
        return env

    async def _start_process(self, argv: list[str], cwd: Path, env: dict[str, str]) -> KernelProcess:
        """Start the kernel's process (a subclass may start it another way; OSError when it cannot)."""
        # Not in a thread, and no await: a cancelled start must not lose the process it made.
        return subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, start_new_session=True)

    async def poll(self) -> int | None:
        if self.process is None:
            return 0
        return self.process.poll()

    async def send_signal(self, signum: int) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(os.getpgid(self.process.pid), signum)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signum)

    async def kill(self) -> None:
        await self.send_signal(signal.SIGKILL)
        await self.wait(5.0)

    async def wait(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` seconds for the process to exit; its exit code or None."""
        if self.process is None:
            return 0
        deadline = asyncio.get_running_loop().time() + timeout
        delay = 0.005
        while (code := self.process.poll()) is None:
            if asyncio.get_running_loop().time() >= deadline:
                return None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)
        return code

    async def cleanup(self, restart: bool) -> None:
        if self.process is not None and self.process.poll() is None:
            await self.kill()
        if restart:
            return
        if self.info is not None:
            self.ports.release(self.info)
        if self.connection_file is not None:
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(self.connection_file.unlink)
