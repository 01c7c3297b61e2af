"""The event schemas collab emits on carme's bus (/api/events/subscribe): jupyter-collaboration's ids."""

from __future__ import annotations

from carme.events import EventSchema

SESSION = "https://schema.jupyter.org/jupyter_collaboration/session/v1"
AWARENESS = "https://schema.jupyter.org/jupyter_collaboration/awareness/v1"

SCHEMAS = [
    EventSchema(SESSION, 1, "A collaborative document was loaded, saved, merged or had a conflict", {
        "level": {"enum": ["INFO", "DEBUG", "WARNING", "ERROR", "CRITICAL"]},
        "room": {"type": "string"},
        "path": {"type": "string"},
        "action": {"enum": ["initialize", "load", "save", "overwrite", "clean", "conflict"]},
        "msg": {"type": "string"},
    }, ("level", "room", "path")),
    EventSchema(AWARENESS, 1, "A user joined or left a collaborative room", {
        "roomid": {"type": "string"},
        "username": {"type": "string"},
        "action": {"enum": ["join", "leave"]},
        "msg": {"type": "string"},
    }, ("roomid", "username", "action")),
]
