"""Listeners: the callbacks told about something (events, contents changes, kernel messages).

One shape for every "call these back" list in carme: ``add`` returns the function that removes the
callback again; a callback that raises is logged and the others are still called, since the thing
they are told about has already happened and the caller cannot undo it.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Generic, ParamSpec

P = ParamSpec("P")


class Listeners(Generic[P]):
    """Callbacks taking ``P``; ``what`` names them in the log line of a failure."""

    __slots__ = ("_callbacks", "_log", "what")

    def __init__(self, log: logging.Logger, what: str) -> None:
        # A tuple, replaced on add and remove: notify (on every kernel message) iterates it as it
        # is, and callbacks added or removed meanwhile do not change the run in progress.
        self._callbacks: tuple[Callable[P, object], ...] = ()
        self._log = log
        self.what = what

    def add(self, callback: Callable[P, object]) -> Callable[[], None]:
        """Call ``callback`` from now on; returns the function that stops it (safe to call twice)."""
        self._callbacks = (*self._callbacks, callback)

        def remove() -> None:
            callbacks = list(self._callbacks)
            if callback in callbacks:
                callbacks.remove(callback)
                self._callbacks = tuple(callbacks)

        return remove

    def __bool__(self) -> bool:
        return bool(self._callbacks)

    def __len__(self) -> int:
        return len(self._callbacks)

    def notify(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Call every callback (those added or removed meanwhile are not affected)."""
        for callback in self._callbacks:
            try:
                callback(*args, **kwargs)
            except Exception:
                self._failed(args)

    async def notify_async(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Call every callback in turn, awaiting those that return an awaitable."""
        for callback in self._callbacks:
            try:
                result = callback(*args, **kwargs)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                self._failed(args)

    def _failed(self, args: tuple[object, ...]) -> None:
        shown = ", ".join(repr(arg) for arg in args)
        self._log.exception("%s failed on %s", self.what, shown[:200])
