"""Visits: who is looking at which dashboard, on which kernel, and when that kernel goes away.

A visit is one browser's view of one notebook with one query string: the visit cookie names the
browser, so a reload (or a second tab of the same browser) finds the visit again, gets the page
already rendered, and reconnects to the same kernel and its widgets. The registry owns the
kernels of visits:

- a visit's kernel is shut down once the visit has had no page streaming and no websocket for
  ``grace_period`` seconds, or, if its page never opened a websocket, ``connect_timeout``
  seconds after the render (no reliance on ``beforeunload`` beacons);
- ``max_kernels`` caps live kernels (visits and pooled); past it a visitor waits in a queue of
  ``queue_size`` places or gets the busy page (:class:`~.slots.Busy`);
- a visit of a notebook with a pool starts on a preheated kernel when one is ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .notebooks import LoadedNotebook
from .pool import KernelPool
from .settings import RenderOptions
from .slots import Busy, Slots
from .stream import RenderLog

if TYPE_CHECKING:
    from carme.kernels.kernel import Kernel
    from carme.kernels.manager import ProvisionerChoice
    from carme.server import Server

log = logging.getLogger("carme.dashboards.visits")


@dataclass(frozen=True)
class VisitKey:
    """What makes two page loads the same visit."""

    browser: str
    path: str
    query: str


class Visit:
    """One visitor's run of one notebook: its kernel, its page log and its connections."""

    def __init__(self, key: VisitKey, kernel_id: str, notebook: LoadedNotebook, env: dict[str, str],
                 options: RenderOptions, base_url: str, pooled: Kernel | None, holds_slot: bool) -> None:
        self.key = key
        self.base_url = base_url
        self.kernel_id = kernel_id
        self.notebook = notebook
        self.env = env
        self.options = options
        self.kernel: Kernel | None = pooled
        self.pooled = pooled is not None
        self.holds_slot = holds_slot
        self.executor_session = uuid.uuid4().hex  # the header.session of the server's own requests
        self.log = RenderLog()
        self.ready = asyncio.Event()  # the kernel answers (or failed: ``error`` says why)
        self.error: str | None = None
        self.pages = 0
        self.sockets = 0
        self.connected_once = False
        self.ended = False
        self.task: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None

    @property
    def queued(self) -> bool:
        return not self.holds_slot

    def __repr__(self) -> str:
        return f"<Visit {self.key.path}?{self.key.query} kernel {self.kernel_id}>"


class VisitRegistry:
    """Every visit and pool of one app; published as ``server.services["dashboards.visits"]``."""

    def __init__(self, server: Server, section: Mapping[str, object]) -> None:
        self.server = server
        self.grace_period = float(section["grace_period"])  # type: ignore[arg-type]
        self.connect_timeout = float(section["connect_timeout"])  # type: ignore[arg-type]
        self.pool_size = int(section["pool_size"])  # type: ignore[call-overload]
        self.widget_subshells = bool(section["widget_subshells"])
        self.slots = Slots(int(section["max_kernels"]), int(section["queue_size"]),  # type: ignore[call-overload]
                           on_free=self._refill_pools)
        self.visits: dict[VisitKey, Visit] = {}
        self.by_kernel: dict[str, Visit] = {}
        self.pools: dict[str, KernelPool] = {}
        self.runner: Callable[[Visit], asyncio.Task[None]] | None = None  # set by the plugin: runs a visit
        self.provisioner: ProvisionerChoice | None = None  # how visits' kernels start (the fork servers)
        self._tasks: set[asyncio.Task[None]] = set()
        self._launching: dict[VisitKey, asyncio.Event] = {}  # set once that launch is over
        self.waiting = 0  # requests waiting for another request's launch of their visit
        self.closing = False

    # -- visits -------------------------------------------------------------------------------

    def find(self, key: VisitKey) -> Visit | None:
        """The live visit of ``key``, if any (a visit whose kernel died is over)."""
        visit = self.visits.get(key)
        if visit is None or visit.ended or (visit.kernel is not None and visit.kernel.closed):
            return None
        return visit

    async def launch(self, key: VisitKey, begin: Callable[[], Awaitable[Visit]]) -> tuple[Visit, bool]:
        """The visit of ``key`` and whether this call made it: the live one, else the one another
        request is launching (awaited: a launch's hooks run once per visit, not once per racing
        request), else the one ``begin`` launches now. When another's launch fails (its hook
        refused, or its client left) this one tries for itself."""
        while True:
            visit = self.find(key)
            if visit is not None:
                return visit, False
            other = self._launching.get(key)
            if other is None:
                break
            self.waiting += 1
            try:
                await other.wait()
            finally:
                self.waiting -= 1
        done = self._launching[key] = asyncio.Event()
        try:
            return await begin(), True
        finally:
            del self._launching[key]
            done.set()

    def open(self, key: VisitKey, notebook: LoadedNotebook, env: dict[str, str], options: RenderOptions,
             base_url: str) -> Visit:
        """The visit of ``key``: the live one, or a new one that starts running now (on a pooled
        kernel, a free slot, or a place in the queue). Raises :class:`Busy` when none is left."""
        if self.closing:
            raise Busy()
        visit = self.find(key)
        if visit is not None:
            return visit
        pool = self._pool_for(notebook)
        kernel = pool.claim(notebook.kernel_name) if pool is not None else None
        if kernel is not None:
            visit = Visit(key, kernel.id, notebook, env, options, base_url, kernel, holds_slot=True)
        elif self.slots.try_take():
            visit = Visit(key, str(uuid.uuid4()), notebook, env, options, base_url, None, holds_slot=True)
        elif self.slots.can_queue():
            visit = Visit(key, str(uuid.uuid4()), notebook, env, options, base_url, None, holds_slot=False)
        else:
            raise Busy()
        if pool is not None:
            pool.refill()
        self.visits[key] = visit
        self.by_kernel[visit.kernel_id] = visit
        assert self.runner is not None, "the plugin sets the runner at start-up"
        visit.task = self.runner(visit)
        visit.task.add_done_callback(lambda _task: self._idle_check(visit))
        log.info("dashboard visit of %s: kernel %s%s", notebook.path, visit.kernel_id,
                 " (pooled)" if visit.pooled else " (queued)" if visit.queued else "")
        return visit

    def for_kernel(self, kernel_id: str, browser: str) -> Visit | None:
        """The live visit of ``browser`` whose kernel is ``kernel_id`` (no other browser's)."""
        visit = self.by_kernel.get(kernel_id)
        if visit is None or visit.ended or visit.key.browser != browser:
            return None
        return visit

    def live_kernels(self) -> int:
        """Dashboard kernels alive or starting: visits holding a slot, and pooled ones."""
        return self.slots.used

    # -- connections and timers ---------------------------------------------------------------

    def page_opened(self, visit: Visit) -> None:
        visit.pages += 1
        self._idle_check(visit)

    def page_closed(self, visit: Visit) -> None:
        visit.pages -= 1
        self._idle_check(visit)

    def socket_opened(self, visit: Visit) -> None:
        visit.sockets += 1
        visit.connected_once = True
        self._idle_check(visit)

    def socket_closed(self, visit: Visit) -> None:
        visit.sockets -= 1
        self._idle_check(visit)

    def _idle_check(self, visit: Visit) -> None:
        """(Re)arm or cancel the visit's timer after any change of its connections or its run."""
        if visit.timer is not None:
            visit.timer.cancel()
            visit.timer = None
        if visit.ended or visit.pages or visit.sockets:
            return
        if visit.queued:
            delay, why = 0.0, "its page left the queue"
        elif visit.connected_once:
            delay, why = self.grace_period, f"no websocket for {self.grace_period:g} s"
        else:
            delay, why = self.connect_timeout, f"its page did not connect within {self.connect_timeout:g} s"
        visit.timer = asyncio.get_running_loop().call_later(delay, lambda: self._background(self.end(visit, why)))

    # -- ending -------------------------------------------------------------------------------

    async def end(self, visit: Visit, reason: str) -> None:
        """Stop the visit's run, shut its kernel down and free its slot (once)."""
        if visit.ended:
            return
        visit.ended = True
        if visit.timer is not None:
            visit.timer.cancel()
            visit.timer = None
        if self.visits.get(visit.key) is visit:
            del self.visits[visit.key]
        self.by_kernel.pop(visit.kernel_id, None)
        task = visit.task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        kernels = self.server.kernels
        if visit.kernel_id in kernels:
            try:
                await kernels.shutdown_kernel(visit.kernel_id)
            except KeyError:
                pass  # shut down meanwhile by someone else
        if visit.holds_slot:
            visit.holds_slot = False
            self.slots.release()
        log.info("dashboard visit of %s ended (%s); kernel %s shut down", visit.key.path, reason, visit.kernel_id)

    def kernel_stopped(self, kernel_id: str) -> None:
        """A kernel stopped (shut down elsewhere, or died): end its visit, or drop it from a pool."""
        visit = self.by_kernel.get(kernel_id)
        if visit is not None:
            self._background(self.end(visit, "its kernel stopped"))
            return
        for pool in self.pools.values():
            if pool.forget(kernel_id):
                return

    async def close(self) -> None:
        """End every visit and empty every pool (server shutdown)."""
        self.closing = True
        for visit in list(self.by_kernel.values()):
            await self.end(visit, "the server is shutting down")
        for pool in self.pools.values():
            await pool.close()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _background(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- pools --------------------------------------------------------------------------------

    def _pool_for(self, notebook: LoadedNotebook) -> KernelPool | None:
        """The pool of a notebook (made on first use) when pools are on and its kernel is Python."""
        if self.pool_size <= 0 or notebook.language.lower() != "python":
            return None
        pool = self.pools.get(notebook.path)
        if pool is None:
            pool = self.pools[notebook.path] = KernelPool(notebook.path, notebook.kernel_name, self.pool_size,
                                                          self.slots, self._start_pooled, self._stop_kernel)
        return pool

    def preheat(self, notebook: LoadedNotebook) -> None:
        """Fill the pool of ``notebook`` now (start-up), instead of on its first visit."""
        pool = self._pool_for(notebook)
        if pool is None:
            log.warning("no kernel pool for %s: pools need dashboards.pool_size > 0 and a Python kernel "
                        "(this notebook's is %r)", notebook.path, notebook.kernel_name)
            return
        pool.refill()

    def _refill_pools(self) -> None:
        if not self.closing:
            for pool in self.pools.values():
                pool.refill()

    async def _start_pooled(self, path: str, kernel_name: str) -> Kernel:
        return await self.server.kernels.start_kernel(kernel_name, path, provisioner=self.provisioner)

    async def _stop_kernel(self, kernel_id: str) -> None:
        if kernel_id in self.server.kernels:
            with contextlib.suppress(KeyError):
                await self.server.kernels.shutdown_kernel(kernel_id)


__all__ = ["Busy", "Visit", "VisitKey", "VisitRegistry"]
