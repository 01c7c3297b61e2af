"""Where JupyterLab's files are: the built frontend, schemas, themes, settings and workspaces.

The frontend comes from the ``jupyterlab-js`` package, which installs ``share/jupyter/lab/``
(``static/``, ``schemas/``, ``themes/``) into ``sys.prefix``; it is looked up on the Jupyter data
path like every other Jupyter data file. User settings and workspaces live where JupyterLab keeps
them (``<jupyter config dir>/lab/user-settings`` and ``.../lab/workspaces``), so the two share them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_config_dir, jupyter_config_path, jupyter_path

from carme.labextensions import jupyter_labextensions_path


class LabNotInstalledError(RuntimeError):
    """The JupyterLab frontend files cannot be found."""


def find_app_dir() -> Path:
    """The first ``<jupyter data dir>/lab`` holding a built frontend (``static/index.html``)."""
    for candidate in jupyter_path("lab"):
        if (Path(candidate) / "static" / "index.html").is_file():
            return Path(candidate)
    raise LabNotInstalledError(
        "JupyterLab's frontend was not found in any of " + ", ".join(jupyter_path("lab"))
        + "; install the jupyterlab-js package (a dependency of carme-lab)")


@dataclass(frozen=True)
class LabPaths:
    """Every folder the lab extension reads or writes, resolved once at start-up."""

    app_dir: Path
    user_settings_dir: Path
    workspaces_dir: Path
    extra_labextensions_path: tuple[Path, ...]
    labextensions_path: tuple[Path, ...]
    config_path: tuple[Path, ...]
    user_config_dir: Path

    @property
    def static_dir(self) -> Path:
        return self.app_dir / "static"

    @property
    def schemas_dir(self) -> Path:
        return self.app_dir / "schemas"

    @property
    def themes_dir(self) -> Path:
        return self.app_dir / "themes"

    @property
    def app_settings_dir(self) -> Path:
        """Admin-level settings (``overrides.json``, ``page_config.json``), as in JupyterLab."""
        return self.app_dir / "settings"

    @classmethod
    def from_settings(cls, section: Mapping[str, Any]) -> LabPaths:
        """Resolve the ``lab.*`` settings; unset ones take JupyterLab's defaults."""
        app_dir = Path(section["app_dir"]).expanduser() if section.get("app_dir") else find_app_dir()
        if not (app_dir / "static" / "index.html").is_file():
            raise LabNotInstalledError(f"lab.app_dir {str(app_dir)!r} has no static/index.html")
        config_dir = Path(jupyter_config_dir())
        extra = [Path(p).expanduser() for p in section.get("extra_labextensions_path") or []]
        return cls(
            app_dir=app_dir.resolve(),
            user_settings_dir=Path(section.get("user_settings_dir") or config_dir / "lab" / "user-settings").expanduser(),
            workspaces_dir=Path(section.get("workspaces_dir") or config_dir / "lab" / "workspaces").expanduser(),
            extra_labextensions_path=tuple(extra),
            labextensions_path=tuple(jupyter_labextensions_path()),
            config_path=tuple(Path(p) for p in jupyter_config_path()),
            user_config_dir=config_dir,
        )
