"""Prebuilt ("federated") labextensions on disk: the JupyterLab frontend pieces a page loads
without a build step.

A prebuilt labextension is a folder ``<name>/`` or ``@<scope>/<name>/`` of a labextensions folder,
holding the ``package.json`` that ``jupyter labextension build`` wrote: its ``jupyterlab._build``
names the webpack remoteEntry (``load``) that a page loads from ``<labextensions url>/<name>/``.
Folders are searched in order and the first one that has a name wins, so a user-level install
shadows a system one (as jupyterlab_server finds them).

The lab extension (JupyterLab's page and extension manager) and dashboards (widget libraries on
dashboard pages) both find them here; what they offer and how they serve the files is theirs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_path

from .jsonutil import read_json_or_none

log = logging.getLogger("carme.labextensions")

__all__ = ["Labextension", "discover", "jupyter_labextensions_path", "read_labextension"]


@dataclass(frozen=True)
class Labextension:
    """One prebuilt labextension found on disk."""

    name: str  # the npm package name, ``@scope/name`` or ``name``
    version: str
    path: Path  # the folder holding its package.json (and ``static/``, ``schemas/``, ``themes/``)
    build: dict[str, Any]  # ``jupyterlab._build``: ``load``, and ``extension``, ``mimeExtension``, ``style`` if any
    install: dict[str, Any] | None = None  # its install.json (how it was installed), if it has one
    disables: tuple[str, ...] = ()  # ``jupyterlab.disabledExtensions``: the plugins it turns off
    package: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # all of package.json

    def page_entry(self) -> dict[str, Any]:
        """Its entry in a page config's ``federated_extensions``: the ``_build`` info and the name."""
        return {**self.build, "name": self.name}


def jupyter_labextensions_path() -> list[Path]:
    """The ``labextensions`` folders of the Jupyter data path, in jupyter_core's search order
    (the user's and the environment's before the system's): where pip puts the labextensions of
    Python packages."""
    return [Path(p) for p in jupyter_path("labextensions")]


def read_labextension(package_json: Path) -> Labextension | None:
    """The labextension that ``package_json`` describes; None (logged) when it is unreadable or
    not a built labextension (no ``jupyterlab._build.load``). Blocking file I/O."""
    data = read_json_or_none(package_json, log)
    if not isinstance(data, dict):
        return None
    lab = data.get("jupyterlab")
    lab = lab if isinstance(lab, dict) else {}
    build = lab.get("_build")
    name = data.get("name")
    if not isinstance(name, str) or not isinstance(build, dict) or not isinstance(build.get("load"), str):
        log.warning("ignoring %s: not a built labextension (no jupyterlab._build.load)", package_json)
        return None
    install_file = package_json.parent / "install.json"
    install = read_json_or_none(install_file, log) if install_file.is_file() else None
    disables = lab.get("disabledExtensions")
    return Labextension(name, str(data.get("version", "")), package_json.parent, dict(build),
                        install if isinstance(install, dict) else None,
                        tuple(d for d in disables if isinstance(d, str)) if isinstance(disables, list) else (),
                        data)


def discover(folders: Iterable[Path]) -> dict[str, Labextension]:
    """Every labextension in ``folders``, by name; the first folder that has a name wins.

    Folders that do not exist are skipped. Blocking file I/O: call it off the event loop.
    """
    found: dict[str, Labextension] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        candidates = sorted(folder.glob("[!@]*/package.json")) + sorted(folder.glob("@*/*/package.json"))
        for package_json in candidates:
            ext = read_labextension(package_json)
            if ext is not None and ext.name not in found:
                found[ext.name] = ext
    return found
