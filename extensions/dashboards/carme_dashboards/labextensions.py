"""Prebuilt labextensions (widget libraries) for dashboard pages, served as JupyterLab serves them.

A widget library installed as a prebuilt ("federated") labextension -- ``jupyterlab_widgets``,
bqplot, ipyleaflet, ipympl -- ships ``<labextensions dir>/<name>/package.json`` with
``jupyterlab._build.load`` (its webpack remoteEntry) and ``static/``, found by
:mod:`carme.labextensions`. The page config lists them (``federated_extensions``) and the page's
client loads each from ``dashboards/labextensions/<name>/<load>``. Folders:
``dashboards.extra_labextensions_path``, then the Jupyter data path's; the first folder that has a
name wins.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, Response

from carme.labextensions import Labextension, discover, jupyter_labextensions_path

IMMUTABLE = "public, max-age=31536000, immutable"


class Labextensions:
    """The labextensions found at start-up, by name, minus the denied ones."""

    def __init__(self, extra_paths: list[str], denied: list[str]) -> None:
        self.folders = [Path(p).expanduser() for p in extra_paths] + jupyter_labextensions_path()
        self.denied = set(denied)
        self.found: dict[str, Labextension] = {}

    def scan(self) -> None:
        """Look the folders over (blocking: run it off the event loop)."""
        self.found = {name: ext for name, ext in discover(self.folders).items() if name not in self.denied}

    def page_entries(self) -> list[dict[str, Any]]:
        return [ext.page_entry() for _name, ext in sorted(self.found.items())]

    async def response(self, relative: str) -> Response:
        """The file ``<name>/<path>`` of a found labextension; 404 for anything else."""
        target = await asyncio.to_thread(self._lookup, relative)
        # remoteEntry.<hash>.js and the chunks it loads are content-hashed; package.json is not.
        hashed = any(len(piece) >= 16 and all(c in "0123456789abcdef" for c in piece)
                     for piece in target.name.split("."))
        return FileResponse(os.fspath(target), headers={"Cache-Control": IMMUTABLE if hashed else "no-cache"})

    def _lookup(self, relative: str) -> Path:
        parts = [p for p in relative.split("/") if p]
        size = 2 if parts and parts[0].startswith("@") else 1
        ext = self.found.get("/".join(parts[:size]))
        rest = parts[size:]
        if ext is None or not rest or any(p in ("..", ".") for p in rest):
            raise HTTPException(404, f"no labextension file {relative!r}")
        base = ext.path.resolve()
        target = base.joinpath(*rest).resolve()
        if base not in target.parents or not target.is_file():
            raise HTTPException(404, f"no labextension file {relative!r}")
        return target
