"""The hard cap on live dashboard kernels, and the bounded queue of visitors waiting for one.

One slot is one live kernel (a visit's or a pooled one). A slot freed while visitors wait goes
to the first of them; otherwise it is free for a new visit or a pool refill. Waiters hear their
place in the queue every time it changes.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


class Busy(Exception):
    """Every kernel is taken and the queue is full (or there is no queue)."""


@dataclass
class _Waiter:
    future: asyncio.Future[None]
    on_position: Callable[[int], None]


class Slots:
    """``capacity`` slots (0: no limit) and up to ``queue_size`` waiters."""

    def __init__(self, capacity: int, queue_size: int, on_free: Callable[[], None] | None = None) -> None:
        self.capacity = capacity
        self.queue_size = queue_size
        self.used = 0
        self._queue: deque[_Waiter] = deque()
        self._on_free = on_free  # told when a slot became free for anyone (pool refills)

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def available(self) -> bool:
        """Could a slot be taken right now without jumping the queue?"""
        return not self._queue and (self.capacity <= 0 or self.used < self.capacity)

    def try_take(self) -> bool:
        if not self.available():
            return False
        self.used += 1
        return True

    def can_queue(self) -> bool:
        return self.capacity > 0 and len(self._queue) < self.queue_size

    async def take(self, on_position: Callable[[int], None]) -> None:
        """A slot now, or after waiting in the queue (Busy when it is full). Cancelling the wait
        leaves the queue."""
        if self.try_take():
            return
        if not self.can_queue():
            raise Busy()
        waiter = _Waiter(asyncio.get_running_loop().create_future(), on_position)
        self._queue.append(waiter)
        on_position(len(self._queue))
        try:
            await waiter.future
        except BaseException:
            if waiter.future.done() and not waiter.future.cancelled():
                self.release()  # the slot was handed over just as the wait was cancelled
            elif waiter in self._queue:
                self._queue.remove(waiter)
                self._announce()
            raise

    def release(self) -> None:
        """A live kernel is gone: its slot goes to the first waiter, else becomes free."""
        while self._queue:
            waiter = self._queue.popleft()
            if not waiter.future.done():
                waiter.future.set_result(None)  # the slot changes hands: ``used`` stays
                self._announce()
                return
        self.used = max(0, self.used - 1)
        if self._on_free is not None:
            self._on_free()

    def _announce(self) -> None:
        for position, waiter in enumerate(self._queue, start=1):
            waiter.on_position(position)
