"""The KernelManager: every running kernel of one app, their lifecycle, events and culling.

One per app (``server.kernels``), with its own ``zmq.asyncio.Context`` and port pool. Routes call
its methods; each action emits a ``kernel_actions`` event as jupyter_server does, and plugins
hear ``carme_on_kernel_started`` / ``carme_on_kernel_stopped``. ``shutdown_all`` (the end of the
app's lifespan) leaves no kernel process and no connection file behind.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from .kernel import Kernel, KernelDeadError, KernelOptions
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
        self._start_tasks: dict[str, asyncio.Future[None]] = {}  # pending starts (listed while starting)
        self._announced: set[str] = set()  # ids the plugins heard start (carme_on_kernel_started)
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

    def pending_for(self, kernel: Kernel) -> bool:
        """Whether a start request for ``kernel`` is answered before it is ready: the
        ``pending_kernels`` setting, or (null) what its provisioner says (``slow_start``)."""
        setting = self.server.settings["pending_kernels"]
        if setting is None:
            return bool(getattr(kernel.provisioner, "slow_start", False))
        return bool(setting)

    async def start_kernel(self, name: str | None = None, path: str | None = None,
                           env: dict[str, str] | None = None, kernel_id: str | None = None,
                           provisioner: ProvisionerChoice | None = None, user: User | None = None,
                           pending: bool | None = False) -> Kernel:
        """Start a kernel of spec ``name`` (default: ``default_kernel_name``) for the notebook at
        API ``path``; returns once it answers kernel_info. ``kernel_id`` chooses the id (a running
        kernel of that id is returned as is). Raises NoSuchKernelSpec for an unknown name and
        KernelStartError when it does not come up, KernelIdConflict when ``kernel_id`` is being started
        by another request. ``provisioner(spec, chosen)`` may put another provisioner in place of
        the one the hooks chose, for this kernel only (dashboards start theirs from a warm process).
        ``user`` is who asked for it, for the provisioner hook (None: carme itself, or anonymous).

        ``pending`` True returns the kernel at once, listed with ``execution_state`` ``starting``
        while it starts (jupyter_server's pending kernels); None decides by :meth:`pending_for`
        (the REST routes). A pending start that fails leaves the kernel listed ``dead`` with its
        ``reason`` until it is deleted (or culled); :meth:`ready` awaits the outcome."""
        if self._closing:
            raise RuntimeError("the server is shutting down")
        if kernel_id is not None and kernel_id in self._kernels:
            kernel = self._kernels[kernel_id]  # jupyter_server: "Using existing kernel"
            if pending is False:
                await self.ready(kernel)
            return kernel
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
        if pending is None:
            pending = self.pending_for(kernel)
        if not pending:
            await self._start(kernel, listed=False)
            return kernel
        self._kernels[kernel.id] = kernel
        task = asyncio.ensure_future(self._start(kernel, listed=True))
        self._start_tasks[kernel.id] = task
        task.add_done_callback(lambda t: self._start_done(kernel, t))
        return kernel

    async def ready(self, kernel: Kernel) -> None:
        """Until ``kernel``'s start is over: returns once it answered kernel_info; raises the
        start's error (KernelStartError) if it failed, KernelDeadError if it was shut down meanwhile.
        A kernel already dead is not waited for (its start task may still be cleaning up)."""
        task = self._start_tasks.get(kernel.id)
        if task is None or kernel.closed:
            return
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.cancelled():
                raise  # the caller itself was cancelled
            raise KernelDeadError(f"kernel {kernel.id} was shut down while starting") from None

    def starting(self, kernel: Kernel) -> bool:
        """True while ``kernel``'s first start is in progress. A start that failed is over as soon
        as the kernel is dead (its clients are told so then), not once its cleanup is done."""
        return kernel in self._starting and not kernel.closed

    async def _start(self, kernel: Kernel, listed: bool) -> None:
        """Start ``kernel``; list it (if not yet) and tell the plugins once it answers."""
        try:
            await kernel.start()
        except Exception as exc:
            self._emit(kernel, "start", "error", f"Kernel failed to start: {exc}")
            raise
        finally:
            self._starting.discard(kernel)
            self._starting_ids.discard(kernel.id)
        if self._closing:  # the server began shutting down while this kernel started
            await kernel.shutdown()
            raise RuntimeError("the server is shutting down")
        if listed and self._kernels.get(kernel.id) is not kernel:  # deleted as it became ready
            await kernel.shutdown()
            return
        self._kernels[kernel.id] = kernel
        self._announced.add(kernel.id)
        self._emit(kernel, "start", "success", "Kernel started")
        self._ensure_culler()
        await self.server.notify("carme_on_kernel_started", kernel=kernel)

    def _start_done(self, kernel: Kernel, task: asyncio.Future[None]) -> None:
        """A pending start ended: a failure stays in the kernel's model (dead, with its reason)."""
        if self._start_tasks.get(kernel.id) is task:
            del self._start_tasks[kernel.id]
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("kernel %s (%s) failed to start: %s", kernel.id, kernel.name, exc)

    async def _cancel_start(self, kernel: Kernel) -> None:
        """Stop a pending start (its launch is closed and cleaned up by Kernel.start)."""
        task = self._start_tasks.get(kernel.id)
        if task is not None and not task.done():
            if kernel in self._starting:  # else it is telling the plugins it started: let it finish
                task.cancel()
            with contextlib.suppress(BaseException):
                await task

    async def shutdown_kernel(self, kernel_id: str) -> None:
        """Stop a kernel and forget it (NoSuchKernel when unknown); a kernel still starting has its
        start cancelled."""
        kernel = self.get(kernel_id)
        self._kernels.pop(kernel_id, None)
        await self._cancel_start(kernel)
        await kernel.shutdown()
        self._emit(kernel, "shutdown", "success", "Kernel shutdown")
        if kernel_id in self._announced:
            self._announced.discard(kernel_id)
            await self.server.notify("carme_on_kernel_stopped", kernel=kernel)

    async def restart_kernel(self, kernel_id: str) -> Kernel:
        """Restart in place (same id); returns once it answers kernel_info. A kernel still
        starting is restarted once started (KernelStartError if its start fails)."""
        kernel = self.get(kernel_id)
        await self.ready(kernel)
        try:
            await kernel.restart()
        except Exception as exc:
            self._emit(kernel, "restart", "error", f"Kernel failed to restart: {exc}")
            await self._kernel_died(kernel)
            raise
        self._emit(kernel, "restart", "success", "Kernel restarted")
        return kernel

    async def interrupt_kernel(self, kernel_id: str) -> None:
        """Interrupt the kernel's code; a kernel still starting is interrupted once started
        (KernelStartError if its start fails)."""
        kernel = self.get(kernel_id)
        await self.ready(kernel)
        await kernel.interrupt()
        self._emit(kernel, "interrupt", "success", "Kernel interrupted")

    async def shutdown_all(self) -> None:
        """Stop every kernel (also ones still starting), the culler, and the ZMQ context."""
        self._closing = True
        if self._culler is not None:
            await cancel_and_wait(self._culler, "the kernel culler", log)
        for kernel in list(self._kernels.values()):
            await self._cancel_start(kernel)
        started = [k for k in self._kernels.values() if k.id in self._announced]
        kernels = list(dict.fromkeys([*self._kernels.values(), *self._starting]))
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
            if kernel.id in self._announced:
                self._announced.discard(kernel.id)
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
        if not isinstance(timeout, int | float) or timeout <= 0 or kernel in self._starting:
            return False  # a kernel still starting is not idle: its launch is bounded by its own timeouts
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
