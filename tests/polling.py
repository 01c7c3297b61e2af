"""Waiting for a condition, always with a deadline: the one polling helper of the tests.

Tests wait for behaviour (a file appears, a state changes, a message arrives), never for a
duration. The deadline only turns a condition that will never hold into a failure naming it,
instead of a hang; it is not a speed requirement, so it is generous.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

DEADLINE_S = 30.0


def _failure(what: str, timeout: float, last: Any) -> AssertionError:
    return AssertionError(f"timed out after {timeout} s waiting for {what}; last value: {last!r}")


def wait_until(get: Callable[[], T], what: str, *, check: Callable[[T], Any] = bool,
               timeout: float = DEADLINE_S, interval: float = 0.01) -> T:
    """Call ``get()`` until ``check(value)`` holds; return that value. Fails naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = get()
        if check(value):
            return value
        if time.monotonic() >= deadline:
            raise _failure(what, timeout, value)
        time.sleep(interval)


async def await_until(get: Callable[[], T | Awaitable[T]], what: str, *, check: Callable[[T], Any] = bool,
                      timeout: float = DEADLINE_S, interval: float = 0.02) -> T:
    """:func:`wait_until` for async tests: ``get`` may return an awaitable; sleeps without
    blocking the event loop."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = get()
        if inspect.isawaitable(value):
            value = await value
        if check(value):  # type: ignore[arg-type]
            return value  # type: ignore[return-value]
        if loop.time() >= deadline:
            raise _failure(what, timeout, value)
        await asyncio.sleep(interval)
