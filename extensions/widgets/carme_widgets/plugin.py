"""The carme plugin of the widgets extension: settings, start-up, kernel subscriptions, routes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.routing import BaseRoute

from carme.config import Setting
from carme.hooks import hookimpl

from . import api, notebook
from .service import WidgetsService

if TYPE_CHECKING:
    from carme.kernels.kernel import Kernel
    from carme.server import Server

SERVICE = "widgets"


@hookimpl
def carme_register_settings() -> list[Setting]:
    return [
        Setting("save_state", bool, False,
                "On a notebook save through the contents API, write the live kernel's widget state into "
                "the notebook metadata (metadata.widgets), so static renderers show the widgets."),
    ]


@hookimpl
def carme_register_routes(server: Server) -> list[BaseRoute]:
    return api.routes()


@hookimpl
def carme_startup(server: Server) -> None:
    server.services[SERVICE] = WidgetsService()


@hookimpl
def carme_shutdown(server: Server) -> None:
    service = server.services.pop(SERVICE, None)
    if service is not None:
        service.close()


@hookimpl
def carme_on_kernel_started(server: Server, kernel: Kernel) -> None:
    service = server.services.get(SERVICE)
    if service is not None:
        service.attach(kernel)


@hookimpl
def carme_on_kernel_stopped(server: Server, kernel: Kernel) -> None:
    service = server.services.get(SERVICE)
    if service is not None:
        service.detach(kernel.id)


@hookimpl
async def carme_before_save(server: Server, path: str, model: dict[str, Any]) -> None:
    service = server.services.get(SERVICE)
    if service is not None and server.settings["widgets.save_state"]:
        await notebook.add_state_on_save(server, service, path, model)
