"""The ``watch`` extension's hook implementations: entry point ``carme_watch.plugin``.

Disabled, none of this is registered: no settings section, no event schema, no
``carme_watch_on_files_changed`` hookspec, no ``/api/watch`` route, no watcher.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from carme.api.permissions import authorized
from carme.config import Setting
from carme.events import EventSchema
from carme.hooks import hookimpl
from carme.jsonutil import JSONResponse

from . import hookspecs, settings
from .events import FILE_CHANGED_SCHEMA
from .settings import WatchConfig
from .watcher import Watcher

if TYPE_CHECKING:
    from carme.server import Server

SERVICE = "watch"


def watcher_of(server: Server) -> Watcher | None:
    """The running watcher of an app, or None when the extension is off or not started."""
    watcher = server.services.get(SERVICE)
    return watcher if isinstance(watcher, Watcher) else None


@hookimpl
def carme_register_hookspecs() -> list[object]:
    return [hookspecs]


@hookimpl
def carme_register_settings() -> list[Setting]:
    return settings.declared()


@hookimpl
def carme_register_event_schemas() -> list[EventSchema]:
    return [FILE_CHANGED_SCHEMA]


@authorized("read", "contents")
async def watch_status(request: Request) -> Response:
    watcher = watcher_of(request.app.state.server)
    return JSONResponse(watcher.status() if watcher else {"state": "stopped"})


@hookimpl
def carme_register_routes(server: Server) -> list[BaseRoute]:
    return [Route("/api/watch", watch_status, methods=["GET"])]


@hookimpl
async def carme_startup(server: Server) -> None:
    # The settings section is the name this module was registered under ("watch" from the
    # entry point).
    section = server.plugins.name_of(sys.modules[__name__])
    watcher = Watcher(server, WatchConfig.from_server(server, section))
    server.services[SERVICE] = watcher
    await watcher.start()


@hookimpl
async def carme_shutdown(server: Server) -> None:
    watcher = watcher_of(server)
    if watcher is not None:
        del server.services[SERVICE]
        await watcher.stop()


@hookimpl
def carme_on_contents_changed(server: Server, action: str, path: str, source_path: str | None) -> None:
    watcher = watcher_of(server)
    if watcher is not None:
        watcher.api_writes.record(action, path, source_path)
