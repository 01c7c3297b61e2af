"""The ``dashboards`` extension's hook implementations: entry point ``carme_dashboards.plugin``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from carme.config import Setting
from carme.hooks import hookimpl

from . import appmode, hookspecs, routes, settings
from .service import DashboardsService

if TYPE_CHECKING:
    from carme.cli import Command
    from carme.kernels.kernel import Kernel
    from carme.server import Server

SERVICE = "dashboards"


@hookimpl
def carme_register_settings() -> list[Setting]:
    return settings.declared()


@hookimpl
def carme_register_hookspecs() -> list[object]:
    return [hookspecs]


@hookimpl
def carme_register_routes(server: Server) -> list[BaseRoute]:
    return routes.routes(server.settings["dashboards.app_mode"])


@hookimpl
def carme_register_public_paths(server: Server) -> list[str]:
    # The page client, template assets and widget libraries hold no user data.
    return list(routes.PUBLIC_PATHS)


@hookimpl
def carme_register_api_paths(server: Server) -> list[str]:
    return list(routes.API_PATHS)


@hookimpl
def carme_register_middleware(server: Server) -> list[Middleware]:
    if not server.settings["dashboards.app_mode"]:
        return []
    return [Middleware(appmode.AppModeGuard, single=bool(server.settings["dashboards.notebook"]))]


@hookimpl
def carme_register_cli_commands() -> list[Command]:
    return [appmode.COMMAND]


@hookimpl
async def carme_startup(server: Server) -> None:
    service = DashboardsService(server)
    await service.start()
    server.services[SERVICE] = service


@hookimpl
async def carme_shutdown(server: Server) -> None:
    service = server.services.pop(SERVICE, None)
    if service is not None:
        await service.stop()


@hookimpl
def carme_on_kernel_stopped(server: Server, kernel: Kernel) -> None:
    service = server.services.get(SERVICE)
    if service is not None:
        service.visits.kernel_stopped(kernel.id)
