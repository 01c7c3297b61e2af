"""``/api/config/<section>``: the frontend config sections of jupyter_server.

A section is read from ``serverconfig/<section>.d/*.json`` then ``serverconfig/<section>.json``
in every Jupyter config directory (system first, the user's last and winning), merged
recursively; writes go to the user's ``serverconfig/<section>.json``. PUT replaces the user's
section (204); PATCH merges into it, a ``null`` value deleting a key, and answers the result.
JupyterLab reads ``jupyterlabapputilsextensionannouncements`` from here on start.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_config_dir, jupyter_config_path
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from carme.api.permissions import authorized
from carme.api.util import json_object
from carme.errors import ApiError
from carme.jsonutil import JSONResponse

from .fileio import atomic_write_text

log = logging.getLogger("carme.lab.config")

_SECTION = re.compile(r"^\w+$")


def recursive_update(target: dict[str, Any], new: dict[str, Any]) -> None:
    """Merge ``new`` into ``target``: objects merge key by key, ``None`` deletes a key."""
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            recursive_update(target[key], value)
            if not target[key]:
                del target[key]
        elif value is None:
            target.pop(key, None)
        else:
            target[key] = value


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring config section file %s: %s", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


class ConfigSections:
    """Reads and writes config sections; one per app, with a lock for read-modify-write."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    @staticmethod
    def user_file(section: str) -> Path:
        return Path(jupyter_config_dir()) / "serverconfig" / f"{section}.json"

    @staticmethod
    def read(section: str) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for directory in reversed(jupyter_config_path()):
            base = Path(directory) / "serverconfig"
            drop_in = base / f"{section}.d"
            files = sorted(drop_in.glob("*.json")) if drop_in.is_dir() else []
            for path in [*files, base / f"{section}.json"]:
                recursive_update(merged, _read(path))
        return merged

    async def replace(self, section: str, data: dict[str, Any]) -> None:
        async with self._lock:
            await asyncio.to_thread(atomic_write_text, self.user_file(section), json.dumps(data, indent=2))

    async def update(self, section: str, data: dict[str, Any]) -> dict[str, Any]:
        async with self._lock:
            path = self.user_file(section)
            current = await asyncio.to_thread(_read, path)
            recursive_update(current, data)
            await asyncio.to_thread(atomic_write_text, path, json.dumps(current, indent=2))
            return current


def _sections(request: Request) -> tuple[ConfigSections, str]:
    section = request.path_params["section"]
    if not _SECTION.match(section):
        raise ApiError(400, f"config section name {section!r} is invalid: letters, digits and _ only", "Bad Request")
    return request.app.state.server.services["lab.config"], section


@authorized("read", "config")
async def config_get(request: Request) -> Response:
    _store, section = _sections(request)
    return JSONResponse(await asyncio.to_thread(ConfigSections.read, section))


@authorized("write", "config")
async def config_put(request: Request) -> Response:
    store, section = _sections(request)
    body = await json_object(request)
    assert body is not None
    await store.replace(section, body)
    return Response(status_code=204)


@authorized("write", "config")
async def config_patch(request: Request) -> Response:
    store, section = _sections(request)
    body = await json_object(request)
    assert body is not None
    return JSONResponse(await store.update(section, body))


def config_routes() -> list[BaseRoute]:
    return [
        Route("/api/config/{section}", config_get, methods=["GET"]),
        Route("/api/config/{section}", config_put, methods=["PUT"], name="config_put"),
        Route("/api/config/{section}", config_patch, methods=["PATCH"], name="config_patch"),
    ]
