"""What a visit's page shows, as a log of events that any number of pages can follow.

A visit's run appends events (a cell's HTML, progress, the place in the queue, an update of an
earlier cell) as they happen; each page response follows the log from its start, so a reload
during the run gets what was already rendered at once and the rest as it comes, and a reload
after the run gets the whole page without running anything again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class CellEvent:
    """A cell has finished: its rendered HTML. ``source`` is None when sources are stripped;
    ``error`` is the failure kind (``exception``, ``timeout``, ``dead``) or None."""

    kind: ClassVar[str] = "cell"
    index: int
    cell_type: str
    html: str
    source: str | None = None
    error: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class UpdateEvent:
    """An ``update_display_data`` changed the outputs of an earlier cell: its new HTML."""

    kind: ClassVar[str] = "update"
    index: int
    html: str


@dataclass(frozen=True)
class ProgressEvent:
    """``done`` of ``total`` cells have finished (0 while the kernel starts)."""

    kind: ClassVar[str] = "progress"
    done: int
    total: int
    text: str

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


@dataclass(frozen=True)
class QueueEvent:
    """Every kernel is taken: this visit waits at ``position`` (1 is next)."""

    kind: ClassVar[str] = "queue"
    position: int


@dataclass(frozen=True)
class Finished:
    """The end of the run: ``status`` ``ok``, ``error`` (a cell failed, or the kernel did not
    start) or ``timeout``; ``failed_cell`` is the index of the cell that stopped it."""

    status: str
    message: str = ""
    failed_cell: int | None = None


Event = CellEvent | UpdateEvent | ProgressEvent | QueueEvent


class RenderLog:
    """Events of one visit, in order, and the outcome once the run has ended."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.finished: Finished | None = None
        self._wake = asyncio.Event()

    def append(self, event: Event) -> None:
        if isinstance(event, UpdateEvent):
            # A page that has not reached that cell yet must get the new HTML with it.
            for i, earlier in enumerate(self.events):
                if isinstance(earlier, CellEvent) and earlier.index == event.index:
                    self.events[i] = CellEvent(earlier.index, earlier.cell_type, event.html, earlier.source,
                                               earlier.error, earlier.tags)
        self.events.append(event)
        self._notify()

    def finish(self, outcome: Finished) -> None:
        if self.finished is None:
            self.finished = outcome
            self._notify()

    def _notify(self) -> None:
        self._wake.set()
        self._wake = asyncio.Event()

    async def follow(self, keepalive: float) -> AsyncIterator[Event | None]:
        """Every event from the first, then new ones as they come, until the run has ended.

        None is yielded after ``keepalive`` seconds without an event, so the page can send a
        byte and no proxy times the response out during a long cell.
        """
        position = 0
        while True:
            while position < len(self.events):
                yield self.events[position]
                position += 1
            if self.finished is not None:
                return
            wake = self._wake
            try:
                await asyncio.wait_for(wake.wait(), keepalive)
            except TimeoutError:
                yield None
