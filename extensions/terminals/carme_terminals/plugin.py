"""The ``terminals`` extension's hook implementations: entry point ``carme_terminals.plugin``.

Disabled, none of this is registered: no settings section, no /api/terminals or
/terminals/websocket routes (they answer 404), no processes, and JupyterLab's page config keeps
``terminalsAvailable: false``, so JupyterLab hides the terminal as with a server that has none.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from starlette.routing import BaseRoute

from carme.config import Setting
from carme.hooks import hookimpl

from . import api, settings
from .manager import TerminalManager
from .settings import TerminalsConfig

if TYPE_CHECKING:
    from starlette.requests import Request

    from carme.server import Server

SERVICE = api.SERVICE


def manager_of(server: Server) -> TerminalManager | None:
    """The running terminal manager of an app, or None when the extension is off or not started."""
    manager = server.services.get(SERVICE)
    return manager if isinstance(manager, TerminalManager) else None


@hookimpl
def carme_register_settings() -> list[Setting]:
    return settings.declared()


@hookimpl
def carme_register_routes(server: Server) -> list[BaseRoute]:
    return api.routes(server)


@hookimpl
def carme_startup(server: Server) -> None:
    # The settings section is the name this module was registered under ("terminals").
    section = server.plugins.name_of(sys.modules[__name__])
    server.services[SERVICE] = TerminalManager(TerminalsConfig.from_server(server, section), server.root_dir,
                                               on_activity=server.touch)


@hookimpl
async def carme_shutdown(server: Server) -> None:
    manager = manager_of(server)
    if manager is not None:
        await manager.shutdown()
        del server.services[SERVICE]


@hookimpl
def carme_lab_extra_page_config(server: Server, request: Request, page_config: dict[str, Any]) -> dict[str, Any]:
    return {"terminalsAvailable": manager_of(server) is not None}
