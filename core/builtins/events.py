"""The built-in events plugin: the core's event schemas and the /api/events routes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

from ..api import events as events_api
from ..events import BUILTIN_SCHEMAS, EventSchema
from ..hooks import hookimpl

if TYPE_CHECKING:
    from ..server import Server


@hookimpl
def carme_register_event_schemas() -> list[EventSchema]:
    return BUILTIN_SCHEMAS


@hookimpl
def carme_register_routes(server: Server) -> list[BaseRoute]:
    return events_api.routes()
