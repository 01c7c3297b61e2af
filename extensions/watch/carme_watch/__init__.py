"""carme-watch: file changes under the served root, as events for clients and a hook for extensions.

- Clients: one event per change on ``/api/events/subscribe``, schema :data:`FILE_CHANGED`.
- Extensions: implement ``carme_watch_on_files_changed(server, changes)`` (see :mod:`carme_watch.hookspecs`);
  each change is a :class:`Change`.
- Python: ``server.services["watch"]`` is the running :class:`Watcher`.

Settings live in the ``watch`` section (:mod:`carme_watch.settings`).
"""

from .changes import Change, ChangeKind, Source
from .events import FILE_CHANGED
from .watcher import Watcher

__all__ = ["FILE_CHANGED", "Change", "ChangeKind", "Source", "Watcher"]
