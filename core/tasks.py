"""Stopping background tasks without losing what they failed with."""

from __future__ import annotations

import asyncio
import logging
from typing import Any


async def cancel_and_wait(task: asyncio.Future[Any], what: str, log: logging.Logger) -> None:
    """Cancel ``task`` and wait until it ends.

    An exception the task ended with is logged as ``what`` failing: nobody else awaits it, so it
    would be lost. A cancellation of the caller itself still propagates.
    """
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
    except Exception:
        log.exception("%s failed", what)
