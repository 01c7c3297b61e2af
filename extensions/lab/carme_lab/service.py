"""The lab service: one per carme app, published as ``server.services["lab"]`` at start-up.

It owns the resolved folders, the discovered labextensions (refreshed on every page load, so an
extension installed with pip shows up on the next reload, as in JupyterLab), the settings and
workspace stores, and the static file apps.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carme.labextensions import Labextension, discover

from .page import make_template_environment
from .paths import LabPaths
from .plugin_states import PluginStates, plugin_states
from .settings import SchemaSource, SettingsStore
from .static import CachedStaticFiles
from .workspaces import WorkspaceStore

if TYPE_CHECKING:
    from carme.server import Server

log = logging.getLogger("carme.lab")

# carme's own settings defaults, below every admin override file.
CARME_DEFAULTS = Path(__file__).resolve().parent / "default_overrides.json"
RESCAN_INTERVAL = 1.0  # seconds between rescans triggered by an unknown labextension name
# JupyterLab's real-time collaboration frontend (pip packages jupyter-docprovider and
# jupyter-collaboration-ui) only works against a server speaking the collaboration protocol, and it
# replaces JupyterLab's own notebook cell executor and file browser: installed beside a carme
# without the collab extension it would break opening files. It is loaded only while an extension
# publishes the "collab" service.
COLLABORATION_FRONTEND = ("@jupyter/docprovider-extension", "@jupyter/collaboration-extension")


class LabService:
    """What the lab routes need, resolved for one server."""

    def __init__(self, server: Server, paths: LabPaths, extension_dirs: Sequence[Path] = ()) -> None:
        self.server = server
        self.paths = paths
        # Folders searched for labextensions: lab.extra_labextensions_path, then the ones that
        # carme extensions ship (carme_lab_register_labextension_paths), then the Jupyter data path.
        self.labextensions_path: list[Path] = [*paths.extra_labextensions_path, *extension_dirs,
                                               *paths.labextensions_path]
        package = json.loads((paths.static_dir / "package.json").read_text(encoding="utf-8"))
        self.app_version: str = package.get("version", "")
        self.static_files = CachedStaticFiles([paths.static_dir])
        self.workspaces = WorkspaceStore(paths.workspaces_dir)
        self.extensions: dict[str, Labextension] = {}
        self.states = PluginStates()
        self.settings = SettingsStore([], paths.user_settings_dir, [])
        self.themes_files = CachedStaticFiles([paths.themes_dir])
        self._extension_files: dict[Path, CachedStaticFiles] = {}
        self._refresh_lock = asyncio.Lock()
        self.page_count = 0
        self._scanned_at = 0.0
        self._templates = make_template_environment(str(paths.static_dir))

    def template(self) -> Any:
        """JupyterLab's ``index.html`` as a compiled Jinja2 template (reloaded if it changes)."""
        return self._templates.get_template("index.html")

    def _scan(self) -> tuple[dict[str, Labextension], PluginStates]:
        section = self.server.settings.section("lab")
        extensions = discover(self.labextensions_path)
        if "collab" not in self.server.services:
            for name in COLLABORATION_FRONTEND:
                extensions.pop(name, None)
        states = plugin_states(self.paths.config_path, self.paths.app_settings_dir,
                               section.get("disabled_extensions") or [], extensions.values())
        return extensions, states

    def _apply(self, extensions: dict[str, Labextension], states: PluginStates) -> None:
        self.extensions, self.states = extensions, states
        sources = [SchemaSource(self.paths.schemas_dir, self.app_version)]
        sources += [SchemaSource(ext.path / "schemas", ext.version) for ext in extensions.values()]
        self.settings.sources = sources
        self.settings.override_files = self._override_files()
        themes = [self.paths.themes_dir] + [ext.path / "themes" for ext in extensions.values()]
        self.themes_files = CachedStaticFiles(themes)

    def _override_files(self) -> list[Path]:
        """Settings overrides, lowest precedence first: carme's own defaults (no request to the
        internet for Jupyter news or update checks unless someone turns them on), then the admin's."""
        files = [CARME_DEFAULTS]
        files += [d / "labconfig" / "default_settings_overrides.json" for d in reversed(self.paths.config_path)]
        settings_dir = self.paths.app_settings_dir
        files += sorted((settings_dir / "overrides.d").glob("*.json")) if (settings_dir / "overrides.d").is_dir() else []
        return files + [settings_dir / "overrides.json5", settings_dir / "overrides.json"]

    async def refresh(self) -> None:
        """Re-discover labextensions and plugin states (off the event loop)."""
        async with self._refresh_lock:
            extensions, states = await asyncio.to_thread(self._scan)
            self._apply(extensions, states)
            self._scanned_at = time.monotonic()
        log.debug("labextensions: %s", ", ".join(sorted(extensions)) or "none")

    async def labextension_files(self, name: str) -> CachedStaticFiles | None:
        """The static files of labextension ``name``; re-discovers if it is unknown (at most once
        a second: these URLs are public, so unknown names must not make the server rescan at will)."""
        ext = self.extensions.get(name)
        if ext is None and time.monotonic() - self._scanned_at > RESCAN_INTERVAL:
            await self.refresh()
            ext = self.extensions.get(name)
        if ext is None:
            return None
        files = self._extension_files.get(ext.path)
        if files is None:
            files = self._extension_files[ext.path] = CachedStaticFiles([ext.path])
        return files

    def directories(self) -> dict[str, Any]:
        """The folder entries of the page config (shown by a few plugins, e.g. the settings editor)."""
        paths = self.paths
        return {
            "appSettingsDir": str(paths.app_settings_dir),
            "schemasDir": str(paths.schemas_dir),
            "themesDir": str(paths.themes_dir),
            "staticDir": str(paths.static_dir),
            "templatesDir": str(paths.static_dir),
            "userSettingsDir": str(paths.user_settings_dir),
            "workspacesDir": str(paths.workspaces_dir),
            "labextensionsPath": [str(p) for p in self.labextensions_path],
            "extraLabextensionsPath": [str(p) for p in paths.extra_labextensions_path],
        }
