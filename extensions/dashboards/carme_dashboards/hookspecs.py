"""Hooks the dashboards extension offers to other extensions (added through
``carme_register_hookspecs``): Voila's ``prelaunch_hook`` and ``page_config_hook``, as pluggy hooks.

Implement them with a plain ``@hookimpl``: while the dashboards extension is disabled or not
installed they are simply never called.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from carme.hooks import hookspec

if TYPE_CHECKING:
    from nbformat import NotebookNode
    from starlette.requests import Request

    from carme.server import Server


@hookspec
def carme_dashboards_before_launch(server: Server, request: Request, path: str, notebook: NotebookNode,
                                   env: dict[str, str]) -> Awaitable[None] | None:
    """A new visit of the dashboard at API ``path`` is about to get its kernel (Voila's
    ``prelaunch_hook``). May be awaitable.

    Called once per visit, for the page ``request`` that starts it (a reload that finds its
    visit again does not call it), before the kernel starts or a pooled one is claimed, in
    registration order. ``notebook`` is this visit's own copy: change it in place to change what
    runs (insert a parameters cell, drop cells). ``env`` is the kernel's environment for this
    visit (the request's variables): change it in place to add some. Raise
    ``carme.errors.ApiError`` to refuse the visit: its status and message make the error page
    (e.g. 403 for a visitor the notebook is not for). Any other exception is a 500 page.
    """


@hookspec
def carme_dashboards_extra_page_config(server: Server, request: Request, path: str,
                                       page_config: dict[str, Any]) -> (
        Awaitable[dict[str, Any] | None] | dict[str, Any] | None):
    """Add to a dashboard page's ``jupyter-config-data`` (Voila's ``page_config_hook``). May be awaitable.

    Called for every dashboard page ``request`` of the notebook at API ``path``, after carme has
    built ``page_config`` (the keys of the page <-> client contract), in registration order.
    Return a dict merged over it (later extensions win), or None. The page config is public to
    the page: put nothing in it the visitor must not see.
    """
