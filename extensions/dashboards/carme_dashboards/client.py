"""Where the dashboard page's client is: the built output of labextensions/dashboard (TypeScript,
webpack), shipped inside this package and served at ``{base_url}dashboards/static/client/``.

The page links ``SCRIPT`` (async), ``STYLE`` and one of ``THEMES`` (see CONTRACT.md).
"""

from __future__ import annotations

from pathlib import Path

CLIENT_DIR = Path(__file__).resolve().parent / "static" / "client"
"""The folder served at ``{base_url}dashboards/static/client/``."""

SCRIPT = "dashboard.js"
STYLE = "dashboard.css"
THEMES = {"light": "theme-light.css", "dark": "theme-dark.css"}
"""JupyterLab's theme variables (--jp-*), one stylesheet per theme."""


class ClientMissingError(RuntimeError):
    """The client was not built (a source checkout without ``npm run build``)."""


def check_client(folder: Path = CLIENT_DIR) -> Path:
    """Return ``folder`` if it holds a built client, else raise ClientMissingError saying how to build it."""
    missing = [name for name in (SCRIPT, STYLE, *THEMES.values()) if not (folder / name).is_file()]
    if missing:
        raise ClientMissingError(
            f"the dashboard page's client is not built ({', '.join(missing)} missing in {folder}): "
            "run `npm ci && npm run build` in labextensions/ (./dev does it)")
    return folder
