"""The Server object: one per app, holding settings, plugins and the running services.

Plugins receive it in every hook. Every service lives in ``server.services`` by name, published
by the plugin that provides it (from :func:`carme.hooks.carme_startup`, or while the app is
assembled); the core's are also typed attributes (``server.kernels`` is
``server.services["kernels"]``). Requiring a service is ``server.services[name]`` or the
attribute: one that is not published raises :class:`ServiceUnavailable` saying why (the server
has not started yet, or no enabled plugin provides it); ``server.services.get(name)`` is for a
service that may be absent (another extension's).

A server is ``created`` (by create_app), ``starting``, ``running``, ``stopping``, then
``stopped``; it can be started again from ``stopped`` (an app served twice).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

from .config import ConfigError, Settings
from .jsonutil import utcnow
from .plugins import Plugins, await_maybe

if TYPE_CHECKING:
    from .api.kernel_ws import KernelWebsockets
    from .auth import Authenticator
    from .authorization import Authorizer
    from .contents.manager import ContentsManager
    from .events import EventBus
    from .kernels.manager import KernelManager
    from .kernels.specs import KernelSpecManager
    from .sessions import SessionManager

log = logging.getLogger("carme.server")

State = Literal["created", "starting", "running", "stopping", "stopped"]
T = TypeVar("T")


class StartupError(RuntimeError):
    """A plugin failed in carme_startup; the message names it and says what went wrong."""


class StartupConfigError(StartupError, ConfigError):
    """A plugin refused its configuration in carme_startup (a bad template name, settings that
    contradict each other): a configuration error like a bad value found while settings resolve,
    which ``carme serve`` reports the same way (one line, exit 2)."""


class ServiceUnavailable(LookupError):
    """A service was required that no plugin has published; the message says why."""


class Services(dict[str, Any]):
    """The services of one server by name; a missing one raises :class:`ServiceUnavailable`."""

    def __init__(self, server: Server) -> None:
        super().__init__()
        self._server = server

    def __missing__(self, name: str) -> Any:
        state = self._server.state
        if state in ("created", "starting"):
            raise ServiceUnavailable(
                f"service {name!r} is not available yet: the server is {state}, and services are published "
                "by carme_startup (look services up when a request arrives, not while the app is assembled)")
        published = ", ".join(sorted(self)) or "none"
        raise ServiceUnavailable(f"no plugin has published the service {name!r} (the server is {state}; "
                                 f"published: {published}); is the extension that provides it enabled?")


class Service(Generic[T]):
    """A core service as a typed attribute of :class:`Server`: ``server.<name>`` is
    ``server.services["<name>"]``, set by the plugin that provides it."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, server: None, owner: type) -> Service[T]: ...
    @overload
    def __get__(self, server: Server, owner: type) -> T: ...

    def __get__(self, server: Server | None, owner: type) -> Service[T] | T:
        if server is None:
            return self
        return server.services[self.name]  # type: ignore[no-any-return]

    def __set__(self, server: Server, value: T) -> None:
        server.services[self.name] = value


class Server:
    """Everything one carme app knows. Made by :func:`carme.create_app`, never global."""

    # The core's services, published by the built-in plugins (or extensions replacing them).
    events: Service[EventBus] = Service()  # from create_app
    auth: Service[Authenticator] = Service()  # from create_app
    authorizer: Service[Authorizer] = Service()  # asks carme_permission, from create_app
    kernel_websockets: Service[KernelWebsockets] = Service()  # the clients of /api/kernels/ID/channels, from create_app
    contents: Service[ContentsManager] = Service()  # from carme_startup, as all below
    kernelspecs: Service[KernelSpecManager] = Service()
    kernels: Service[KernelManager] = Service()
    sessions: Service[SessionManager] = Service()

    def __init__(self, settings: Settings, plugins: Plugins) -> None:
        self.settings = settings
        self.plugins = plugins
        self.root_dir = Path(settings["root_dir"] or ".").expanduser().resolve()
        self.started: datetime = utcnow()
        self.last_activity: datetime = self.started
        self.services = Services(self)
        self.state: State = "created"
        self.public_paths: list[str] = []  # carme_register_public_paths, collected by create_app
        self._shutdown_request: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return f"<Server {self.state} {self.root_dir}>"

    @property
    def running(self) -> bool:
        """Started and not stopping."""
        return self.state == "running"

    @property
    def hook(self) -> Any:
        """The pluggy hook relay, for calling hooks: ``server.hook.carme_on_kernel_started(...)``."""
        return self.plugins.hook

    def touch(self) -> None:
        """Record API activity (for /api/status and idle shutdown)."""
        self.last_activity = utcnow()

    def latest_activity(self) -> datetime:
        """The newest of the last API activity and every kernel's last message (/api/status's
        ``last_activity``, as jupyter_server's ``web_app.last_activity()``; a hub's culler reads it)."""
        kernels = self.services.get("kernels")
        return max([self.last_activity, *(kernel.last_activity for kernel in kernels or ())])

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
        the error is raised, so a failed start leaves no service running. The error is a
        :class:`StartupConfigError` when the plugin raised a :class:`~carme.config.ConfigError`,
        else a :class:`StartupError`.
        """
        if self.state not in ("created", "stopped"):
            raise RuntimeError(f"cannot start a server that is {self.state}")
        self.state = "starting"
        started: list[str] = []
        for name in self.plugins.implementers("carme_startup"):
            try:
                await await_maybe(self.plugins.call(name, "carme_startup", server=self))
            except Exception as exc:
                self.state = "stopping"
                await self._stop(started)
                self.state = "stopped"
                error = StartupConfigError if isinstance(exc, ConfigError) else StartupError
                raise error(f"extension {name!r} failed to start: {exc}") from exc
            started.append(name)
        self.state = "running"

    async def stop(self) -> None:
        """Run every plugin's carme_shutdown in reverse order; errors are logged, never raised.
        Only a running server stops; otherwise this does nothing."""
        if self.state != "running":
            return
        self.state = "stopping"
        await self._stop(None)
        self.state = "stopped"

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
