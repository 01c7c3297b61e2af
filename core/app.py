"""create_app: the one entry point for serving and embedding carme."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Host, Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from . import config
from .api.permissions import declared, walk
from .auth import Authenticator, AuthMiddleware, PathSet
from .authorization import DENIED_EVENT, Authorizer
from .errors import EXCEPTION_HANDLERS, refuse_websocket
from .events import EventBus
from .extension_state import ExtensionStates
from .methods import MethodsMiddleware
from .plugins import PluginError, Plugins
from .server import Server

log = logging.getLogger("carme.app")


class RouteConflictError(PluginError, ValueError):
    """Two plugins claim the same route path."""


class CarmeApp(Starlette):
    """The Starlette app made by :func:`create_app`; ``app.server`` is its :class:`Server`.

    Mounted inside another app, Starlette does not run a mounted app's lifespan: pass
    ``lifespan=carme_app.lifespan`` to the host (or enter ``carme_app.lifespan(host)`` in the host's
    own lifespan) so kernels are shut down with it. Without that, services start on the first
    request and a warning is logged.
    """

    server: Server

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Any = None) -> AsyncIterator[None]:
        """Start and stop the carme services; usable as a host app's ``lifespan``. Services
        already started (``carme serve`` starts them before uvicorn, to report a start-up error
        itself) are only stopped."""
        if not self.server.running:
            await self.server.start()
        try:
            yield
        finally:
            await self.server.stop()


def _route_path(route: BaseRoute) -> str:
    if isinstance(route, Route | WebSocketRoute | Mount):
        return route.path
    if isinstance(route, Host):
        return "host:" + route.host
    return repr(route)


def collect_routes(plugins: Plugins, server: Server) -> list[BaseRoute]:
    """Every plugin's routes in registration order; a path claimed twice is an error naming both."""
    owners: dict[tuple[str, str], str] = {}
    routes: list[BaseRoute] = []
    for name, contributed in plugins.each("carme_register_routes", server=server):
        for route in contributed:
            kind = "ws" if isinstance(route, WebSocketRoute) else "http"
            key = (kind, _route_path(route))
            if owners.get(key, name) != name:
                raise RouteConflictError(
                    f"route {key[1]!r} is claimed by both {owners[key]!r} and {name!r}; disable one of them"
                )
            owners[key] = name
            routes.append(route)
    return routes


def load_plugins(layers: list[config.ConfigLayer], extra: Iterable[object] = (), only: Iterable[str] | None = None,
                 explicit: Iterable[str] = (), environ: Mapping[str, str] | None = None,
                 ) -> tuple[Plugins, config.Settings]:
    """The plugin manager (built-ins, extra plugins, enabled extensions) and the resolved settings.

    ``explicit`` names extensions the caller asked for by name: an unknown one is an error
    listing the installed ones (names in config files are not checked: an uninstalled
    extension's old config must not stop the server). ``environ`` (default ``os.environ``) is
    handed to :func:`carme.hooks.carme_extra_settings`.
    """
    plugin_set = Plugins()
    plugin_set.register_builtins()
    for plugin in extra:
        plugin_set.register(plugin)
    plugin_set.load_extensions(config.extension_states(layers), only)
    derived = config.overrides_layer("extension settings", {
        key: value for _name, answer in plugin_set.each("carme_extra_settings", environ=os.environ if environ is None else environ)
        for key, value in answer.items()})
    if derived.values:
        # Over the environment layer (read_layers puts it after the files), under the command line.
        after = next((i + 1 for i, layer in enumerate(layers) if layer.source == "environment"), 0)
        layers = [*layers[:after], derived, *layers[after:]]
    unknown = sorted(set(explicit) - set(plugin_set.extensions))
    if unknown:
        raise config.ConfigError(f"unknown extension(s) {', '.join(unknown)}; installed: "
                                 f"{', '.join(sorted(plugin_set.extensions)) or 'none'}")
    disabled = [name for name, info in plugin_set.extensions.items() if not info.enabled or info.error]
    return plugin_set, config.resolve(plugin_set.settings_specs(), layers, ignored_sections=disabled)


def normalise_base_url(base_url: str) -> str:
    return "/" + base_url.strip("/") + "/" if base_url.strip("/") else "/"


def create_app(
    root_dir: str | None = None,
    *,
    token: str | None = None,
    auth: bool | None = None,
    base_url: str | None = None,
    extensions: Iterable[str] | Mapping[str, bool] | None = None,
    plugins: Iterable[object] = (),
    settings: Mapping[str, Any] | None = None,
    config_files: bool = True,
    environ: Mapping[str, str] | None = None,
    _cli: Iterable[config.ConfigLayer] = (),
    _cli_extensions: Iterable[str] = (),
) -> CarmeApp:
    """Build a carme app: a Starlette app serving the Jupyter Server API and its extensions.

    Arguments override every other configuration source:

    - ``root_dir``: the folder served (default: the current directory).
    - ``token``: the auth token (default: ``JUPYTER_TOKEN``, else generated); ``auth=False``
      turns authentication off explicitly.
    - ``base_url``: URL prefix of every route (``/user/me/``).
    - ``extensions``: a list of names to enable (all others off), or a mapping name -> bool
      applied over the configured state; None keeps the configured state.
    - ``plugins``: extra plugin objects (with ``@hookimpl`` functions) to register, e.g. an
      embedding product's own authentication.
    - ``settings``: any setting by dotted name (``{"cull_idle_timeout": 600, "watch.polling": True}``).
    - ``config_files``: read ``carme_config.json`` files from the Jupyter config path.
    - ``environ``: where ``CARME_*`` variables are read (default ``os.environ``).

    Raises :class:`carme.config.ConfigError` for a bad setting and :class:`RouteConflictError`
    when two extensions claim one route.
    """
    overrides: dict[str, Any] = dict(settings or {})
    for key, value in (("root_dir", root_dir), ("token", token), ("auth_enabled", auth), ("base_url", base_url)):
        if value is not None:
            overrides[key] = value
    explicit_extensions: dict[str, bool] = {}
    only: list[str] | None = None
    if isinstance(extensions, Mapping):
        explicit_extensions = dict(extensions)
    elif extensions is not None:
        only = list(extensions)

    layers = config.read_layers(config_files, environ)
    file_count = len(layers) - 1  # the last is the environment's
    layers.extend(_cli)
    layers.append(config.overrides_layer("create_app", overrides, explicit_extensions))
    # Asking for an extension that is not installed is an error; turning one off is not.
    wanted = [*(name for name, on in explicit_extensions.items() if on), *(only or []), *_cli_extensions]
    plugin_set, resolved = load_plugins(layers, plugins, only, explicit=wanted, environ=environ)
    server = Server(resolved, plugin_set)
    # /api/extensions re-reads the config files; the other layers of this run stay as they were.
    server.services["extensions"] = ExtensionStates(plugin_set, layers[file_count:], only=only,
                                                    config_files=config_files)
    server.events = EventBus()
    server.auth = Authenticator(server)
    server.authorizer = Authorizer(server)
    server.events.register(DENIED_EVENT)
    for _name, schemas in plugin_set.each("carme_register_event_schemas"):
        for schema in schemas:
            server.events.register(schema)

    routes = collect_routes(plugin_set, server)
    public, api = (
        [path for _name, paths in plugin_set.each(hook, server=server) for path in paths]
        for hook in ("carme_register_public_paths", "carme_register_api_paths")
    )
    _warn_undeclared(routes, public)
    server.public_paths = public
    middleware = [Middleware(AuthMiddleware, server=server, public_paths=public, api_paths=api)]
    for _name, entries in plugin_set.each("carme_register_middleware", server=server):
        middleware.extend(entries)
    middleware.append(Middleware(MethodsMiddleware, routes=routes))  # innermost: 405 only after auth, as jupyter_server

    base = normalise_base_url(server.settings["base_url"])
    inner = Starlette(routes=routes, middleware=middleware, exception_handlers=EXCEPTION_HANDLERS)  # type: ignore[arg-type]
    inner.state.server = server
    app = CarmeApp(
        routes=[Mount(base.rstrip("/"), app=inner)] if base != "/" else routes,
        middleware=[Middleware(LazyStartMiddleware, server=server)] + ([] if base != "/" else middleware),
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
    )
    app.router.lifespan_context = app.lifespan
    for router in (app.router, inner.router):
        router.default = _websocket_not_found(router.default)
    app.server = server
    app.state.server = server
    return app


def _websocket_not_found(default: ASGIApp) -> ASGIApp:
    """A websocket to a path nothing serves is refused with 404 JSON, as an HTTP request is
    (Starlette closes it, which a client sees as 403: the same as being refused entry)."""
    async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await refuse_websocket(scope, send, 404, f"Not Found: {scope['path']}", "Not Found")
        else:
            await default(scope, receive, send)

    return not_found


def undeclared_routes(routes: list[BaseRoute], public: list[str]) -> list[str]:
    """Paths of the routes that declare no permission and are not public."""
    public_paths = PathSet(public)
    return [path for path, route in walk(routes)
            if declared(route) is None and path not in public_paths and path + "/" not in public_paths]


def _warn_undeclared(routes: list[BaseRoute], public: list[str]) -> None:
    """Log the routes that declare no permission (the tests refuse them in carme's own code)."""
    for path in undeclared_routes(routes, public):
        log.warning("route %s declares no permission (carme.api.permissions.authorized): every "
                    "authenticated user may use it", path)


class LazyStartMiddleware:
    """Starts the services on the first request when the host app did not run carme's lifespan."""

    def __init__(self, app: ASGIApp, server: Server) -> None:
        self.app = app
        self.server = server
        self._lock = asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan" and not self.server.running:
            async with self._lock:
                if not self.server.running:
                    log.warning("carme was mounted without its lifespan; starting services on first request "
                                "(pass lifespan=carme_app.lifespan to the host app so they also stop)")
                    await self.server.start()
        await self.app(scope, receive, send)
