"""The event bus: one Python API to emit events (served by :mod:`carme.api.events`).

Each event is sent to subscribers as one JSON text frame: the event's data with ``schema_id``,
``version`` and ``timestamp`` added at the top level. JupyterLab reads ``schema_id`` and the data
keys from the top level, as jupyter_server sends them; ``version`` and ``timestamp`` are reserved
names that a schema cannot use for its own properties.

Schemas are registered by plugins (:func:`carme.hooks.carme_register_event_schemas`); data is
checked against the schema's ``required`` keys and each property's JSON type / enum, which is the
part of JSON Schema jupyter_server's own event schemas use.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .jsonutil import isoformat, utcnow
from .listeners import Listeners

log = logging.getLogger("carme.events")

RESERVED = frozenset({"schema_id", "version", "timestamp"})
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "object": (dict,), "array": (list,), "null": (type(None),),
}

CONTENTS_SCHEMA = "https://events.jupyter.org/jupyter_server/contents_service/v1"
KERNEL_ACTIONS_SCHEMA = "https://events.jupyter.org/jupyter_server/kernel_actions/v1"


class EventError(ValueError):
    """An event does not match its schema, or its schema is unknown."""


@dataclass(frozen=True)
class EventSchema:
    """A registered event schema: id, integer version, and JSON-Schema-style properties."""

    id: str
    version: int
    title: str
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    required: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        clash = RESERVED & set(self.properties)
        if clash:
            raise EventError(f"event schema {self.id}: property names {sorted(clash)} are reserved")

    def validate(self, data: dict[str, Any]) -> None:
        missing = [key for key in self.required if key not in data]
        if missing:
            raise EventError(f"event {self.id}: missing required {missing}")
        for key, value in data.items():
            rule = self.properties.get(key)
            if rule is None:
                continue
            kinds = rule.get("type")
            if kinds is not None:
                names = [kinds] if isinstance(kinds, str) else kinds
                allowed = tuple(t for name in names for t in _JSON_TYPES[name])
                if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
                    raise EventError(f"event {self.id}: {key} = {value!r} is not of type {kinds}")
            if "enum" in rule and value not in rule["enum"]:
                raise EventError(f"event {self.id}: {key} = {value!r} is not one of {rule['enum']}")


Listener = Callable[[dict[str, Any]], None]


class EventBus:
    """Registered schemas and subscribers. Emitting is synchronous and never blocks on a client."""

    def __init__(self) -> None:
        self.schemas: dict[str, EventSchema] = {}
        self._listeners: Listeners[[dict[str, Any]]] = Listeners(log, "event listener")

    def register(self, schema: EventSchema) -> None:
        known = self.schemas.get(schema.id)
        if known is not None and known != schema:
            raise EventError(f"event schema {schema.id} is registered twice with different definitions")
        self.schemas[schema.id] = schema

    def emit(self, schema_id: str, data: dict[str, Any], version: int | None = None) -> dict[str, Any]:
        """Validate ``data`` against its schema and deliver it to every listener; returns the event."""
        schema = self.schemas.get(schema_id)
        if schema is None:
            raise EventError(f"unknown event schema {schema_id!r}")
        if version is not None and version != schema.version:
            raise EventError(f"event schema {schema_id} has version {schema.version}, not {version}")
        schema.validate(data)
        event = {**data, "schema_id": schema_id, "version": schema.version, "timestamp": isoformat(utcnow())}
        self._listeners.notify(event)
        return event

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` for every event; returns a function that removes it."""
        return self._listeners.add(listener)


BUILTIN_SCHEMAS = [
    EventSchema(
        CONTENTS_SCHEMA, 1, "Contents Manager activities",
        {"action": {"enum": ["get", "create", "save", "upload", "rename", "copy", "delete"]},
         "path": {"type": "string"}, "source_path": {"type": "string"}},
        ("action", "path"),
    ),
    EventSchema(
        KERNEL_ACTIONS_SCHEMA, 1, "Kernel Manager activities",
        {"kernel_id": {"type": "string"}, "kernel_name": {"type": "string"},
         "action": {"enum": ["start", "interrupt", "shutdown", "restart"]},
         "status": {"enum": ["success", "error"]}, "status_code": {"type": "number"}, "msg": {"type": "string"}},
        ("action",),
    ),
]
