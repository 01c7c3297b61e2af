"""The hook the watch extension adds for other extensions (collab, dashboards) to implement."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

from carme.hooks import hookspec

if TYPE_CHECKING:
    from carme.server import Server

    from .changes import Change


@hookspec
def carme_watch_on_files_changed(server: Server, changes: list[Change]) -> Awaitable[None] | None:
    """Files under the served root changed. May be awaitable.

    Called once per debounced batch, after the batch's events were emitted; ``changes`` is the
    batch's :class:`carme_watch.Change` list (one per path, sorted by path). Implementations run one
    after the other on the watcher's task: keep them short and start a task for long work. An
    exception is logged and never stops the watcher or the other implementations.

    Only called while the ``watch`` extension is enabled; an extension that implements it loads
    and works without watch installed or enabled (the hook is simply never called), with no
    ``optionalhook=True``. Import nothing from carme_watch at run time (``Change`` for typing only).
    """
