"""Prebuilt labextensions (widget libraries) for dashboard pages, served as JupyterLab serves them.

A widget library installed as a prebuilt ("federated") labextension -- ``jupyterlab_widgets``,
bqplot, ipyleaflet, ipympl -- ships ``<labextensions dir>/<name>/package.json`` with
``jupyterlab._build.load`` (its webpack remoteEntry) and ``static/``. The page config lists them
(``federated_extensions``) and the page's client loads each from
``dashboards/labextensions/<name>/<load>``. Folders: ``dashboards.extra_labextensions_path``, then
``jupyter_path("labextensions")``; the first folder that has a name wins.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_path
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, Response

log = logging.getLogger("carme.dashboards.labextensions")

IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Labextension:
    name: str
    path: Path
    build: dict[str, Any]

    def page_entry(self) -> dict[str, Any]:
        """Its entry in ``federated_extensions``: ``{name, load, extension?, mimeExtension?, style?}``."""
        return {**self.build, "name": self.name}


def _read(package_json: Path) -> Labextension | None:
    try:
        data = json.loads(package_json.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("ignoring %s: %s", package_json, exc)
        return None
    lab = data.get("jupyterlab") if isinstance(data, dict) else None
    build = lab.get("_build") if isinstance(lab, dict) else None
    name = data.get("name") if isinstance(data, dict) else None
    if not isinstance(name, str) or not isinstance(build, dict) or not isinstance(build.get("load"), str):
        return None
    return Labextension(name, package_json.parent, dict(build))


class Labextensions:
    """The labextensions found at start-up, by name, minus the denied ones."""

    def __init__(self, extra_paths: list[str], denied: list[str]) -> None:
        self.folders = [Path(p).expanduser() for p in extra_paths] + [Path(p) for p in jupyter_path("labextensions")]
        self.denied = set(denied)
        self.found: dict[str, Labextension] = {}

    def scan(self) -> None:
        """Look the folders over (blocking: run it off the event loop)."""
        found: dict[str, Labextension] = {}
        for folder in self.folders:
            if not folder.is_dir():
                continue
            for package_json in sorted(folder.glob("[!@]*/package.json")) + sorted(folder.glob("@*/*/package.json")):
                ext = _read(package_json)
                if ext is not None and ext.name not in found and ext.name not in self.denied:
                    found[ext.name] = ext
        self.found = found

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
