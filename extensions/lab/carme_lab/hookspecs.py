"""Hooks the lab extension offers to other extensions (added through ``carme_register_hookspecs``).

Implement them with a plain ``@hookimpl``: while the lab extension is disabled or not installed,
they are simply never called (the ``carme_lab_`` prefix says whose hooks they are).
"""

from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carme.hooks import hookspec

if TYPE_CHECKING:
    from starlette.requests import Request

    from carme.server import Server


@hookspec
def carme_lab_extra_page_config(server: Server, request: Request, page_config: dict[str, Any]) -> (
        Awaitable[dict[str, Any] | None] | dict[str, Any] | None):
    """Add to JupyterLab's page config. May be awaitable.

    Called for every JupyterLab page (/lab, /lab/tree/..., /doc/...) after carme-lab has built
    ``page_config`` for ``request``, in registration order. Return a dict merged over it (later
    extensions win), e.g. ``{"terminalsAvailable": True}`` from a terminals extension, or None.
    """


@hookspec
def carme_lab_register_labextension_paths(server: Server) -> list[Path | str]:
    """Folders holding prebuilt labextensions that this extension ships.

    Called once when the lab service starts. Each folder holds ``<name>/package.json`` (or
    ``@scope/<name>/package.json``) as ``jupyter labextension build`` lays them out; they are
    served at /lab/extensions/<name>/ and loaded by the page like pip-installed ones. They are
    searched after ``lab.extra_labextensions_path`` and before the Jupyter data path, so the copy
    that goes with the server-side extension wins over another installed one of the same name.
    """
