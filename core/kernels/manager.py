"""The KernelManager: every running kernel of one app, their lifecycle, events and culling.

One per app (``server.kernels``), with its own ``zmq.asyncio.Context`` and port pool. Routes call
its methods; each action emits a ``kernel_actions`` event as jupyter_server does, and plugins
hear ``carme_on_kernel_started`` / ``carme_on_kernel_stopped``. ``shutdown_all`` (the end of the
app's lifespan) leaves no kernel process and no connection file behind.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import zmq.asyncio
from jupyter_core.paths import jupyter_runtime_dir

from ..events import KERNEL_ACTIONS_SCHEMA
from ..jsonutil import utcnow
from ..tasks import cancel_and_wait
from .connection import PortPool
from .kernel import Kernel, KernelOptions
from .provisioner import LocalProvisioner, Provisioner
from .specs import KernelSpec, KernelSpecManager

if TYPE_CHECKING:
    from ..auth import User
    from ..server import Server

log = logging.getLogger("carme.kernels.manager")


# (spec, the provisioner the hooks chose) -> the provisioner to use for one kernel
ProvisionerChoice = Callable[[KernelSpec, Provisioner], Provisioner]


class NoSuchKernel(KeyError):
    """No running kernel has that id."""

    def __init__(self, kernel_id: str) -> None:
        super().__init__(kernel_id)
        self.kernel_id = kernel_id

    def __str__(self) -> str:
        return f"Kernel does not exist: {self.kernel_id}"


class KernelIdConflict(RuntimeError):
    """A kernel of that id is being started by another request."""


def cwd_for_path(root: Path, path: str | None) -> Path:
    """The kernel's working directory for a notebook API path: the path itself if it is a folder,
    else the nearest existing folder above it; never outside ``root`` (as jupyter_server's
    ``cwd_for_path``, plus a check that symlinks do not lead out of the root)."""
    parts = [p for p in PurePosixPath((path or "").strip("/")).parts if p not in ("", ".")]
    if ".." in parts:
        return root
    folder = root.joinpath(*parts)
    while folder != root and not folder.is_dir():
        folder = folder.parent
    resolved = folder.resolve()
    return folder if resolved == root.resolve() or root.resolve() in resolved.parents else root


class KernelManager:
    """Starts, finds, restarts, interrupts, culls and stops kernels."""

    def __init__(self, server: Server, specs: KernelSpecManager) -> None:
        self.server = server
        self.specs = specs
        settings = server.settings
        self.options = KernelOptions(
            kernel_info_timeout=settings["kernel_info_timeout"], shutdown_wait_time=settings["shutdown_wait_time"],
            restart_limit=settings["restart_limit"], poll_interval=settings["kernel_poll_interval"],
            heartbeat_timeout=settings["kernel_heartbeat_timeout"],
        )
        # The one ZMQ context of the kernels: the server's own channels and every websocket client's
        # relay sockets. Two I/O threads, so a flood on the clients' sockets does not hold up the
        # server's heartbeats and replies.
        self.context = zmq.asyncio.Context(io_threads=2)
        self.ports = PortPool()
        self.runtime_dir = Path(jupyter_runtime_dir())
        self._kernels: dict[str, Kernel] = {}
        self._starting: set[Kernel] = set()
        self._starting_ids: set[str] = set()  # claimed before start_kernel's first await
        self._culler: asyncio.Task[None] | None = None
        self._closing = False

    # -- lookup -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._kernels)

    def __iter__(self) -> Iterator[Kernel]:
        return iter(list(self._kernels.values()))

    def __contains__(self, kernel_id: object) -> bool:
        return kernel_id in self._kernels

    def get(self, kernel_id: str) -> Kernel:
        """The kernel of ``kernel_id``; :class:`NoSuchKernel` (a KeyError) when there is none."""
        try:
            return self._kernels[kernel_id]
        except KeyError:
            raise NoSuchKernel(kernel_id) from None

    def list(self) -> list[dict[str, Any]]:
        """Models of every running kernel."""
        return [kernel.model() for kernel in self._kernels.values()]

    def connection_count(self) -> int:
        """Open client connections over all kernels (for /api/status)."""
        return sum(kernel.connections for kernel in self._kernels.values())

    # -- actions ----------------------------------------------------------------------------

    def _provisioner_for(self, spec: KernelSpec, choose: ProvisionerChoice | None = None,
                         user: User | None = None) -> Provisioner:
        chosen = self.server.hook.carme_kernel_provisioner(server=self.server, spec=spec, user=user)
        if chosen is None:  # the built-in plugin answers last; this is for managers made by hand
            chosen = self.local_provisioner()
        if choose is not None:
            chosen = choose(spec, chosen)
        return chosen  # type: ignore[no-any-return]

    def local_provisioner(self) -> LocalProvisioner:
        """The built-in provisioner, configured from the settings."""
        return LocalProvisioner(self.ports, self.runtime_dir, self.server.settings["ipykernel_no_drop"])

    async def start_kernel(self, name: str | None = None, path: str | None = None,
                           env: dict[str, str] | None = None, kernel_id: str | None = None,
                           provisioner: ProvisionerChoice | None = None, user: User | None = None) -> Kernel:
        """Start a kernel of spec ``name`` (default: ``default_kernel_name``) for the notebook at
        API ``path``; returns once it answers kernel_info. ``kernel_id`` chooses the id (a running
        kernel of that id is returned as is). Raises NoSuchKernelSpec for an unknown name and
        KernelStartError when it does not come up, KernelIdConflict when ``kernel_id`` is being started
        by another request. ``provisioner(spec, chosen)`` may put another provisioner in place of
        the one the hooks chose, for this kernel only (dashboards start theirs from a warm process).
        ``user`` is who asked for it, for the provisioner hook (None: carme itself, or anonymous)."""
        if self._closing:
            raise RuntimeError("the server is shutting down")
        if kernel_id is not None and kernel_id in self._kernels:
            return self._kernels[kernel_id]  # jupyter_server: "Using existing kernel"
        if kernel_id is not None and kernel_id in self._starting_ids:
            raise KernelIdConflict(f"kernel {kernel_id} is already starting")
        kernel_id = kernel_id or str(uuid.uuid4())
        self._starting_ids.add(kernel_id)  # before any await: a second request for this id must see it
        name = name or self.server.settings["default_kernel_name"]
        try:
            spec = await asyncio.to_thread(self.specs.get, name)
            cwd = await asyncio.to_thread(cwd_for_path, self.server.root_dir, path)
            kernel = Kernel(kernel_id, spec, self._provisioner_for(spec, provisioner, user), self.context, self.options,
                            cwd, dict(env or {}), on_dead=self._kernel_died)
        except BaseException:
            self._starting_ids.discard(kernel_id)
            raise
        self._starting.add(kernel)
        try:
            await kernel.start()
        except Exception as exc:
            self._emit(kernel, "start", "error", f"Kernel failed to start: {exc}")
            raise
        finally:
            self._starting.discard(kernel)
            self._starting_ids.discard(kernel_id)
        if self._closing:  # the server began shutting down while this kernel started
            await kernel.shutdown()
            raise RuntimeError("the server is shutting down")
        self._kernels[kernel.id] = kernel
        self._emit(kernel, "start", "success", "Kernel started")
        self._ensure_culler()
        await self.server.notify("carme_on_kernel_started", kernel=kernel)
        return kernel

    async def shutdown_kernel(self, kernel_id: str) -> None:
        """Stop a kernel and forget it (NoSuchKernel when unknown)."""
        kernel = self.get(kernel_id)
        self._kernels.pop(kernel_id, None)
        await kernel.shutdown()
        self._emit(kernel, "shutdown", "success", "Kernel shutdown")
        await self.server.notify("carme_on_kernel_stopped", kernel=kernel)

    async def restart_kernel(self, kernel_id: str) -> Kernel:
        """Restart in place (same id); returns once it answers kernel_info."""
        kernel = self.get(kernel_id)
        try:
            await kernel.restart()
        except Exception as exc:
            self._emit(kernel, "restart", "error", f"Kernel failed to restart: {exc}")
            await self._kernel_died(kernel)
            raise
        self._emit(kernel, "restart", "success", "Kernel restarted")
        return kernel

    async def interrupt_kernel(self, kernel_id: str) -> None:
        kernel = self.get(kernel_id)
        await kernel.interrupt()
        self._emit(kernel, "interrupt", "success", "Kernel interrupted")

    async def shutdown_all(self) -> None:
        """Stop every kernel (also ones still starting), the culler, and the ZMQ context."""
        self._closing = True
        if self._culler is not None:
            await cancel_and_wait(self._culler, "the kernel culler", log)
        started = list(self._kernels.values())
        kernels = started + list(self._starting)
        self._kernels.clear()
        results = await asyncio.gather(*(k.shutdown() for k in kernels), return_exceptions=True)
        for kernel, result in zip(kernels, results, strict=True):
            if isinstance(result, BaseException):
                log.error("kernel %s did not shut down cleanly: %s", kernel.id, result)
        for kernel in started:  # the ones plugins heard start
            await self.server.notify("carme_on_kernel_stopped", kernel=kernel)
        self.context.destroy(linger=0)

    async def _kernel_died(self, kernel: Kernel) -> None:
        """A kernel gave up restarting (or failed a restart): forget it, tell the plugins."""
        if self._kernels.pop(kernel.id, None) is not None:
            await kernel.shutdown()
            await self.server.notify("carme_on_kernel_stopped", kernel=kernel)

    def _emit(self, kernel: Kernel, action: str, status: str, msg: str) -> None:
        data = {"kernel_id": kernel.id, "kernel_name": kernel.name, "action": action, "status": status, "msg": msg}
        try:
            self.server.events.emit(KERNEL_ACTIONS_SCHEMA, data)
        except Exception:
            log.exception("could not emit a kernel_actions event")

    # -- culling ----------------------------------------------------------------------------

    def _ensure_culler(self) -> None:
        """Start the culler on the first kernel start when culling is on (as jupyter_server)."""
        if self._culler is None and self.server.settings["cull_idle_timeout"] > 0:
            self._culler = asyncio.ensure_future(self._cull_loop())

    async def _cull_loop(self) -> None:
        interval = max(self.server.settings["cull_interval"], 0.01)
        while True:
            await asyncio.sleep(interval)
            for kernel in list(self._kernels.values()):
                try:
                    await self.cull_if_idle(kernel)
                except Exception:
                    log.exception("culling kernel %s failed", kernel.id)

    async def cull_if_idle(self, kernel: Kernel) -> bool:
        """Shut ``kernel`` down if it is idle by the culling settings; True when culled."""
        settings = self.server.settings
        timeout = kernel.spec.metadata.get("cull_idle_timeout", settings["cull_idle_timeout"])
        if not isinstance(timeout, int | float) or timeout <= 0:
            return False
        idle = utcnow() - kernel.last_activity
        if kernel.execution_state != "dead":
            if idle <= timedelta(seconds=timeout):
                return False
            if kernel.execution_state == "busy" and not settings["cull_busy"]:
                return False
            if kernel.connections and not settings["cull_connected"]:
                return False
        log.warning("culling kernel %s (%s), idle for %s, %s, %d connections", kernel.id, kernel.name,
                    idle, kernel.execution_state, kernel.connections)
        if kernel.id in self._kernels:
            await self.shutdown_kernel(kernel.id)
        return True
