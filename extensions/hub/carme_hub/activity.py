"""Activity reports to the hub, so its idle culler sees a busy server as busy.

The last activity is the newest of the server's (the last authenticated request other than
/api/status) and every kernel's (the last message it sent). It is POSTed to the hub's activity URL
at start and then every ``hub.activity_interval`` seconds (±10 %, so a hub's servers do not all
report at once), only when it is newer than the last report; a failed report is retried with
backoff for up to a minute, then waits for the next round, as jupyterhub-singleuser does. No
activity URL, or an interval of 0 (or less), turns reports off, as there too. A malformed URL also
turns them off, with a warning at start: jupyterhub-singleuser starts anyway (it only logs each
failed report), and a server the hub spawned is more use running than refusing to start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from datetime import datetime
from typing import TYPE_CHECKING

import httpx

from carme.jsonutil import isoformat

if TYPE_CHECKING:
    from carme.server import Server

    from .service import HubService

log = logging.getLogger("carme.hub.activity")

RETRY_SECONDS = 60


class ActivityReporter:
    """Posts the server's last activity to the hub until stopped."""

    def __init__(self, server: Server, hub: HubService) -> None:
        self.server = server
        self.hub = hub
        self.reported: datetime | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether reports are being made (started, with an activity URL and an interval)."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        # An interval of 0 would report in a loop that never sleeps.
        if not self.hub.activity_url or self.hub.activity_interval <= 0 or self._task is not None:
            return
        problem = url_problem(self.hub.activity_url)
        if problem:
            log.warning("activity reports are off: the activity URL (JUPYTERHUB_ACTIVITY_URL, setting "
                        "hub.activity_url) %r %s", self.hub.activity_url, problem)
            return
        self._task = asyncio.create_task(self._run(), name="carme-hub-activity")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def report(self) -> bool:
        """One report if there is news; whether the hub has the newest activity now."""
        when = self.server.latest_activity()
        if self.reported is not None and when <= self.reported:
            return True
        delay = 1.0
        waited = 0.0
        while True:
            try:
                await self.hub.client.post_activity(self.hub.activity_url, self.hub.server_name, isoformat(when))
            except OSError as exc:
                if waited >= RETRY_SECONDS:
                    log.error("activity report failed, trying again in %d s: %s", self.hub.activity_interval, exc)
                    return False
                log.warning("activity report failed (%s); retrying in %.0f s", exc, delay)
                await asyncio.sleep(delay)
                waited += delay
                delay = min(delay * 2, 15)
                continue
            self.reported = when
            return True

    async def _run(self) -> None:
        while True:
            try:
                await self.report()
            except Exception:  # noqa: BLE001 - one failed report must not end the reports
                log.exception("activity report failed, trying again in %d s", self.hub.activity_interval)
            interval = self.hub.activity_interval
            await asyncio.sleep(interval * random.uniform(0.9, 1.1))


def url_problem(url: str) -> str | None:
    """What makes ``url`` unusable for the reports (said after the URL), or None."""
    try:
        parsed = httpx.URL(url)
        port = parsed.port
    except httpx.InvalidURL as exc:
        return f"is malformed: {exc}"
    if parsed.scheme not in ("http", "https"):
        return "is not an http:// or https:// URL"
    if not parsed.host:
        return "names no host"
    if port is not None and not 0 < port < 65536:
        return f"has port {port}, out of range"
    return None
