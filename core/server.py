"""The Server object: one per app, holding settings, plugins and the running services.

Plugins receive it in every hook. Services are attributes for the core (``contents``,
``kernels``, ``sessions``, ``events``, ``auth``) and entries of ``services`` for extensions
(``server.services["watch"]``), published from :func:`carme.hooks.carme_startup`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import Settings
from .jsonutil import utcnow
from .plugins import Plugins, await_maybe

if TYPE_CHECKING:
    from .api.kernel_ws import KernelWebsockets
    from .auth import Authenticator
    from .contents.manager import ContentsManager
    from .events import EventBus
    from .kernels.manager import KernelManager
    from .kernels.specs import KernelSpecManager
    from .sessions import SessionManager

log = logging.getLogger("carme.server")


class Server:
    """Everything one carme app knows. Made by :func:`carme.create_app`, never global."""

    def __init__(self, settings: Settings, plugins: Plugins) -> None:
        self.settings = settings
        self.plugins = plugins
        self.root_dir = Path(settings["root_dir"] or ".").expanduser().resolve()
        self.started: datetime = utcnow()
        self.last_activity: datetime = self.started
        self.services: dict[str, Any] = {}
        self.running = False
        # Core services, set by the built-in plugins at start-up (or replaced by extensions).
        self.events: EventBus
        self.auth: Authenticator
        self.contents: ContentsManager
        self.kernelspecs: KernelSpecManager
        self.kernels: KernelManager
        self.sessions: SessionManager
        self.kernel_websockets: KernelWebsockets  # the clients of /api/kernels/ID/channels
        self._shutdown_request: Callable[[], None] | None = None

    @property
    def hook(self) -> Any:
        """The pluggy hook relay, for calling hooks: ``server.hook.carme_on_kernel_started(...)``."""
        return self.plugins.hook

    def touch(self) -> None:
        """Record API activity (for /api/status and idle shutdown)."""
        self.last_activity = utcnow()

    async def notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call a notification hook on every plugin, awaiting async ones; errors are logged."""
        for name in self.plugins.implementers(hook_name):
            try:
                await await_maybe(self.plugins.call(name, hook_name, server=self, **kwargs))
            except Exception:
                log.exception("plugin %s failed in %s", name, hook_name)

    async def start(self) -> None:
        """Run every plugin's carme_startup in registration order; a failure names the plugin.

        When one fails, the plugins already started are stopped again (reverse order) before
        the error is raised, so a failed start leaves no service running.
        """
        started: list[str] = []
        for name in self.plugins.implementers("carme_startup"):
            try:
                await await_maybe(self.plugins.call(name, "carme_startup", server=self))
            except Exception as exc:
                await self._stop(started)
                raise RuntimeError(f"extension {name!r} failed to start: {exc}") from exc
            started.append(name)
        self.running = True

    async def stop(self) -> None:
        """Run every plugin's carme_shutdown in reverse order; errors are logged, never raised."""
        self.running = False
        await self._stop(None)

    async def _stop(self, only: list[str] | None) -> None:
        for name in self.plugins.implementers("carme_shutdown", reverse=True):
            if only is not None and name not in only:
                continue
            try:
                await await_maybe(self.plugins.call(name, "carme_shutdown", server=self))
            except Exception:
                log.exception("plugin %s failed to shut down", name)

    def request_shutdown(self) -> None:
        """Ask whoever runs the server (the CLI) to stop it, as /api/shutdown does."""
        if self._shutdown_request is not None:
            asyncio.get_running_loop().call_soon(self._shutdown_request)
        else:
            log.warning("shutdown requested but this app is embedded; the host app decides")

    def on_shutdown_request(self, callback: Callable[[], None]) -> None:
        self._shutdown_request = callback
