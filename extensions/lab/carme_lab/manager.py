"""The extension manager and plugin manager APIs of JupyterLab's UI, read-only for installs.

carme does not install packages from the browser (``pip`` does, then a reload finds them), so
this is JupyterLab's "read-only" extension manager: ``/lab/api/extensions`` lists the installed
prebuilt extensions and searches find nothing; installing answers an error, as JupyterLab's
read-only manager does. Enabling and disabling (an extension from the extension manager, a
plugin from the plugin manager) works: it is written to the user's
``labconfig/page_config.json`` ``disabledExtensions``, which the next page load reads.
Locked plugins (``lockedExtensions``) cannot be toggled.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from carme.api.permissions import authorized
from carme.api.util import json_object
from carme.errors import ApiError
from carme.jsonutil import JSONResponse
from carme.labextensions import Labextension

from .fileio import atomic_write_text
from .plugin_states import PAGE_CONFIG_FILE

if TYPE_CHECKING:
    from .service import LabService

METADATA = {"name": "read-only", "can_install": False, "install_path": sys.prefix}


@dataclass(frozen=True)
class ActionResult:
    """JupyterLab's answer to an extension or plugin action."""

    status: str
    message: str | None = None
    needs_restart: list[str] = field(default_factory=list)


def extension_entry(ext: Labextension, enabled: bool) -> dict[str, Any]:
    """An installed prebuilt extension as JupyterLab's ExtensionPackage."""
    data = ext.package

    def url_of(key: str) -> Any:
        value = data.get(key)
        return value.get("url") if isinstance(value, dict) else value

    discovery = (data.get("jupyterlab") or {}).get("discovery") or {}
    author = data.get("author")
    return {
        "name": ext.name, "description": data.get("description", ""), "homepage_url": data.get("homepage", ""),
        "pkg_type": "prebuilt", "allowed": True, "approved": False,
        "companion": "server" if "server" in discovery else "kernel" if "kernel" in discovery else None,
        "core": False, "enabled": enabled, "install": ext.install or {}, "installed": True,
        "installed_version": ext.version, "latest_version": ext.version, "status": "ok",
        "author": author.get("name") if isinstance(author, dict) else author, "license": data.get("license"),
        "bug_tracker_url": url_of("bugs"), "documentation_url": None, "package_manager_url": None,
        "repository_url": url_of("repository"),
    }


def write_enabled(config_dir: Path, name: str, enabled: bool) -> None:
    """Record ``name`` as enabled or disabled in ``<config_dir>/labconfig/page_config.json``."""
    path = config_dir / "labconfig" / PAGE_CONFIG_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        data = {}
    except ValueError as exc:
        raise ApiError(500, f"{path} is not valid JSON ({exc}); fix or remove it", "Server Error") from None
    if not isinstance(data, dict):
        raise ApiError(500, f"{path} is not a JSON object; fix or remove it", "Server Error")
    disabled = data.get("disabledExtensions")
    if isinstance(disabled, list):
        disabled = dict.fromkeys(disabled, True)
    elif not isinstance(disabled, dict):
        disabled = {}
    disabled[name] = not enabled
    data["disabledExtensions"] = disabled
    atomic_write_text(path, json.dumps(data, indent=2))


class Manager:
    """Enable/disable with a lock around the read-modify-write of page_config.json."""

    def __init__(self, service: LabService) -> None:
        self.service = service
        self._lock = asyncio.Lock()

    def is_locked(self, name: str) -> bool:
        locked = self.service.states.locked
        return name in locked or name.split(":")[0] in locked or any(r.split(":")[0] == name for r in locked)

    async def set_enabled(self, name: str, enabled: bool) -> ActionResult:
        if self.is_locked(name):
            verb = "enabled" if enabled else "disabled"
            return ActionResult("error", f"The following plugins cannot be {verb} as they are locked: {name}")
        async with self._lock:
            await asyncio.to_thread(write_enabled, self.service.paths.user_config_dir, name, enabled)
        await self.service.refresh()
        return ActionResult("ok", None, ["frontend"])


def _manager(request: Request) -> Manager:
    return request.app.state.server.services["lab.manager"]  # type: ignore[no-any-return]


def _action_response(result: ActionResult) -> Response:
    return JSONResponse(asdict(result), status_code=500 if result.status == "error" else 201)


async def _command(request: Request, name_key: str, allowed: tuple[str, ...]) -> tuple[str, str]:
    body = await json_object(request)
    assert body is not None
    cmd, name = body.get("cmd"), body.get(name_key)
    if cmd not in allowed or not isinstance(name, str) or not name:
        raise ApiError(422, f"Could not process instruction {cmd!r} with {name_key.replace('_', ' ')} {name!r}",
                       "Unprocessable Entity")
    return cmd, name


@authorized("read", "lab")
async def extensions_list(request: Request) -> Response:
    service = _manager(request).service
    if request.query_params.get("query") is not None:
        return JSONResponse([])  # nothing to search: installs are done with pip
    entries = [extension_entry(ext, ext.name not in service.states.disabled) for ext in service.extensions.values()]
    per_page = request.query_params.get("per_page", "30")
    url = str(request.url.replace(query=f"page=1&per_page={per_page}"))
    return JSONResponse(entries, headers={"link": f'<{url}>; rel="last", <{url}>; rel="first"'})


@authorized("write", "server")
async def extensions_action(request: Request) -> Response:
    cmd, name = await _command(request, "extension_name", ("install", "uninstall", "enable", "disable"))
    if cmd in ("install", "uninstall"):
        what = "installation" if cmd == "install" else "removal"
        return _action_response(ActionResult("error", f"Extension {what} not supported: use pip, then reload."))
    return _action_response(await _manager(request).set_enabled(name, cmd == "enable"))


@authorized("read", "lab")
async def plugins_locks(request: Request) -> Response:
    return JSONResponse({"lockRules": list(_manager(request).service.states.locked), "allLocked": False})


@authorized("write", "server")
async def plugins_action(request: Request) -> Response:
    cmd, name = await _command(request, "plugin_name", ("enable", "disable"))
    return _action_response(await _manager(request).set_enabled(name, cmd == "enable"))


def manager_routes() -> list[BaseRoute]:
    return [
        Route("/lab/api/extensions", extensions_list, methods=["GET"]),
        Route("/lab/api/extensions", extensions_action, methods=["POST"], name="extensions_action"),
        Route("/lab/api/plugins", plugins_locks, methods=["GET"]),
        Route("/lab/api/plugins", plugins_action, methods=["POST"], name="plugins_action"),
    ]
