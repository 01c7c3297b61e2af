"""The ``collab`` extension's hook implementations: entry point ``carme_collab.plugin``.

Disabled, none of this is registered: no settings section, routes, hookspec, rooms or databases,
and carme-lab does not load JupyterLab's collaboration frontend (it looks for the ``collab`` service).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from starlette.routing import BaseRoute

from carme.config import Setting
from carme.events import EventSchema
from carme.hooks import hookimpl

from . import api, execute_api, hookspecs, settings
from .events import SCHEMAS
from .service import CollabService
from .settings import CollabConfig
from .websocket import RoomEndpoint

if TYPE_CHECKING:
    from starlette.requests import Request

    from carme.kernels.kernel import Kernel
    from carme.server import Server

SERVICE = "collab"  # carme-lab loads JupyterLab's collaboration frontend only while this service runs
# Frontend plugins that need server APIs carme-collab does not serve (the document timeline asks
# for /api/collaboration/timeline and undo_redo, the anchor's history forks): turned off rather
# than left as a button that fails.
UNSERVED_PLUGINS = ("@jupyter/docprovider-extension:statusBarTimeline",)


def service_of(server: Server) -> CollabService | None:
    service = server.services.get(SERVICE)
    return service if isinstance(service, CollabService) else None


@hookimpl
def carme_register_hookspecs() -> list[object]:
    return [hookspecs]


@hookimpl
def carme_register_settings() -> list[Setting]:
    return settings.declared()


@hookimpl
def carme_register_event_schemas() -> list[EventSchema]:
    return list(SCHEMAS)


@hookimpl
def carme_register_routes(server: Server) -> list[BaseRoute]:
    return [*api.routes(RoomEndpoint(server)), *execute_api.routes()]


@hookimpl
async def carme_startup(server: Server) -> None:
    section = server.plugins.name_of(sys.modules[__name__])
    service = CollabService(server, CollabConfig.from_server(server, section))
    await service.start()
    server.services[SERVICE] = service


@hookimpl
async def carme_shutdown(server: Server) -> None:
    service = service_of(server)
    if service is not None:
        del server.services[SERVICE]
        await service.stop()


@hookimpl
async def carme_on_contents_changed(server: Server, action: str, path: str, source_path: str | None) -> None:
    service = service_of(server)
    if service is not None:
        await service.contents_changed(action, path, source_path)


@hookimpl
def carme_on_kernel_stopped(server: Server, kernel: Kernel) -> None:
    service = service_of(server)
    if service is not None:
        service.executor.forget(kernel.id)


@hookimpl
async def carme_watch_on_files_changed(server: Server, changes: list[Any]) -> None:
    service = service_of(server)
    if service is not None:
        await service.files_changed(changes)


@hookimpl
def carme_lab_extra_page_config(server: Server, request: Request, page_config: dict[str, Any]) -> dict[str, Any]:
    service = service_of(server)
    config: dict[str, Any] = {"disableRTC": service is None,
                              "serverSideExecution": bool(service is not None and service.config.server_side_execution)}
    if service is not None:
        disabled = list(page_config.get("disabledExtensions") or [])
        config["disabledExtensions"] = disabled + [name for name in UNSERVED_PLUGINS if name not in disabled]
    return config
