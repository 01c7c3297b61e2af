"""Start a coroutine in the caller, as Python 3.12's eager tasks do, on every Python carme supports.

A websocket send usually completes without waiting (the transport takes the frame): run from a
callback, it then costs no task and no extra event loop iteration before the frame is written.
Only when it does wait (the transport is paused) does a task take over where it stopped.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Coroutine, Generator
from typing import Any


def start_now(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """Run ``coro`` up to its first wait, here; None if it finished, else the task finishing it.

    An exception ``coro`` raises before it waits is raised here.
    """
    try:
        waiting_on = coro.send(None)
    except StopIteration:
        return None
    return asyncio.ensure_future(_resume(coro, waiting_on))


@types.coroutine
def _resume(coro: Coroutine[Any, Any, None], waiting_on: Any) -> Generator[Any, Any, None]:
    """Go on with a started ``coro`` inside a task: what ``await`` would do from its first wait on
    (hand the task what it waits on, pass back the result or the exception, cancellation included)."""
    while True:
        try:
            result = yield waiting_on
        except BaseException as exc:  # noqa: BLE001 - thrown in by the task: coro's to handle
            try:
                waiting_on = coro.throw(exc)
            except StopIteration:
                return
        else:
            try:
                waiting_on = coro.send(result)
            except StopIteration:
                return
