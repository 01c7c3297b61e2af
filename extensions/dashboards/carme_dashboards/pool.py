"""Preheated kernels, per notebook: started ahead of visits, claimed by one, refilled behind it.

A pooled kernel is started in the notebook's folder with the server's environment; the visit
that claims it puts its request into ``os.environ`` before the first cell runs (the executor's
``run_silent``), so the notebook sees QUERY_STRING and friends as with a fresh kernel. The cells
themselves run only once a visit has claimed the kernel, so pools and progressive rendering go
together (Voila runs the whole notebook ahead of the visit and cannot stream it). Python kernels
only: the environment is set with Python code.

Each pooled kernel holds a slot of the cap (:mod:`.slots`); a claim hands its slot to the visit,
and the refill takes a new slot only when one is free and nobody is queued for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from .slots import Slots

if TYPE_CHECKING:
    from carme.kernels.kernel import Kernel

log = logging.getLogger("carme.dashboards.pool")

RETRY_AFTER = 5.0  # seconds before a pool tries again after a kernel failed to start


class KernelPool:
    """Up to ``size`` started kernels of spec ``kernel_name`` for the notebook at ``path``."""

    def __init__(self, path: str, kernel_name: str, size: int, slots: Slots,
                 start: Callable[[str, str], Awaitable[Kernel]], stop: Callable[[str], Awaitable[None]]) -> None:
        self.path = path
        self.kernel_name = kernel_name
        self.size = size
        self.slots = slots
        self._start = start  # (notebook path, kernel name) -> a started kernel
        self._stop = stop  # kernel id -> shut down
        self.ready: deque[Kernel] = deque()
        self._starting: set[asyncio.Task[None]] = set()
        self._stopping: set[asyncio.Task[None]] = set()
        self._retry: asyncio.TimerHandle | None = None
        self.closed = False

    def __contains__(self, kernel_id: object) -> bool:
        return any(kernel.id == kernel_id for kernel in self.ready)

    def claim(self, kernel_name: str) -> Kernel | None:
        """A ready kernel of ``kernel_name`` (its slot goes with it), or None. The caller refills
        (:meth:`refill`) once it has taken its own slot, so a refill never takes a visitor's."""
        kernel = None
        while self.ready:
            candidate = self.ready.popleft()
            if not candidate.closed and candidate.name == kernel_name:
                kernel = candidate
                break
            self._discard(candidate)
        if kernel_name != self.kernel_name:
            self.kernel_name = kernel_name  # the notebook changed kernels: refill with the new one
        return kernel

    def refill(self) -> None:
        """Start kernels until the pool is full, as far as free slots allow."""
        while (not self.closed and self._retry is None and len(self.ready) + len(self._starting) < self.size
               and self.slots.try_take()):
            task = asyncio.ensure_future(self._start_one())
            self._starting.add(task)
            task.add_done_callback(self._starting.discard)

    async def _start_one(self) -> None:
        try:
            kernel = await self._start(self.path, self.kernel_name)
        except Exception as exc:
            self.slots.release()
            if not self.closed:
                log.warning("pool of %s: a %s kernel failed to start (%s); retrying in %.0f s", self.path,
                            self.kernel_name, exc, RETRY_AFTER)
                self._retry = asyncio.get_running_loop().call_later(RETRY_AFTER, self._retry_now)
            return
        if self.closed:
            await self._stop(kernel.id)
            self.slots.release()
            return
        self.ready.append(kernel)
        log.debug("pool of %s: kernel %s ready (%d/%d)", self.path, kernel.id, len(self.ready), self.size)

    def _retry_now(self) -> None:
        self._retry = None
        self.refill()

    def forget(self, kernel_id: str) -> bool:
        """A pooled kernel stopped on its own: drop it and free its slot. False if not pooled."""
        for kernel in list(self.ready):
            if kernel.id == kernel_id:
                self.ready.remove(kernel)
                self.slots.release()
                self.refill()
                return True
        return False

    def _discard(self, kernel: Kernel) -> None:
        task = asyncio.ensure_future(self._stop(kernel.id))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)
        self.slots.release()

    async def close(self) -> None:
        """Shut every pooled kernel down (and those still starting)."""
        self.closed = True
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        kernels = list(self.ready)
        self.ready.clear()
        for kernel in kernels:
            await self._stop(kernel.id)
            self.slots.release()
        if self._starting or self._stopping:
            await asyncio.gather(*self._starting, *self._stopping, return_exceptions=True)
