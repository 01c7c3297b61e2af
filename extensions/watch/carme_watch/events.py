"""The event schema of file changes, emitted on carme's event bus (/api/events/subscribe)."""

from __future__ import annotations

from carme.events import EventSchema

FILE_CHANGED = "https://events.carme.dev/watch/file_changed/v1"
"""Schema id of one file change. Subscribers receive, as one JSON frame per change::

    {"schema_id": FILE_CHANGED, "version": 1, "timestamp": "...Z",
     "path": "data/a.csv", "change": "modified", "source": "external"}

plus ``"old_path"`` for ``"change": "moved"``.
"""

FILE_CHANGED_SCHEMA = EventSchema(
    FILE_CHANGED, 1, "A file or folder under the served root changed",
    {
        "path": {"type": "string"},
        "change": {"enum": ["added", "modified", "deleted", "moved"]},
        "source": {"enum": ["api", "external"]},
        "old_path": {"type": "string"},
    },
    ("path", "change", "source"),
)
