"""Saving widget state into notebooks (the ``widgets.save_state`` setting).

When a notebook is saved through the contents API and a session ties it to a live kernel, the
kernel's widget state is written into the notebook's metadata, where JupyterLab (``saveState``),
nbconvert and nbviewer look for it::

    metadata.widgets["application/vnd.jupyter.widget-state+json"] = {version_major, version_minor, state}

The state comes from the server-held store, so it is written even when no frontend asked for it
(collaborative autosave, saves from scripts).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from carme.plugins import await_maybe

from .state import STATE_MIMETYPE

if TYPE_CHECKING:
    from carme.server import Server

    from .service import WidgetsService

log = logging.getLogger("carme.widgets")


def put_widget_state(notebook: dict[str, Any], state: dict[str, Any]) -> None:
    """Write ``state`` into ``notebook["metadata"]["widgets"]``; an empty state removes the entry.

    Other entries of ``metadata.widgets`` (other mime types) are kept.
    """
    metadata = notebook.get("metadata")
    if not isinstance(metadata, dict):
        metadata = notebook["metadata"] = {}
    widgets = metadata.get("widgets")
    if not isinstance(widgets, dict):
        widgets = {}
    if state.get("state"):
        widgets[STATE_MIMETYPE] = state
    else:
        widgets.pop(STATE_MIMETYPE, None)
    if widgets:
        metadata["widgets"] = widgets
    else:
        metadata.pop("widgets", None)


async def kernel_for_path(server: Server, path: str) -> str | None:
    """The id of the kernel of the session whose notebook is ``path``, if any."""
    sessions = server.sessions
    wanted = path.strip("/")
    for session in await await_maybe(sessions.list()):
        if str(session.get("path", "")).strip("/") == wanted and session.get("kernel"):
            return str(session["kernel"]["id"])
    return None


async def add_state_on_save(server: Server, service: WidgetsService, path: str, model: dict[str, Any]) -> None:
    """Put the live kernel's widget state into a notebook model about to be saved."""
    if model.get("type") != "notebook" or not isinstance(model.get("content"), dict):
        return
    kernel_id = await kernel_for_path(server, path)
    if kernel_id is None or kernel_id not in service.kernels:
        return
    put_widget_state(model["content"], service.state(kernel_id))
