"""Prebuilt ("federated") labextensions and the enabled/disabled state of lab plugins.

Discovery follows jupyterlab_server: each folder of the labextensions path holds
``<name>/package.json`` or ``@scope/<name>/package.json``; the first folder that has a name wins,
so a user-level install shadows a system one. The frontend loads ``jupyterlab._build.load`` (a
webpack remoteEntry) from ``<labextensions url>/<name>/``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("carme.lab.federated")

PAGE_CONFIG_FILE = "page_config.json"


@dataclass(frozen=True)
class FederatedExtension:
    """One prebuilt labextension found on disk."""

    name: str
    version: str
    path: Path
    build: dict[str, Any]
    install: dict[str, Any] | None = None
    disables: tuple[str, ...] = ()
    package: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def page_entry(self) -> dict[str, Any]:
        """The entry of page_config ``federated_extensions``: the ``_build`` info plus the name."""
        return {**self.build, "name": self.name}

    @property
    def schemas_dir(self) -> Path:
        return self.path / "schemas" / self.name

    @property
    def themes_dir(self) -> Path:
        return self.path / "themes" / self.name


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("ignoring %s: %s", path, exc)
        return None


def _load(package_json: Path) -> FederatedExtension | None:
    data = _read_json(package_json)
    if not isinstance(data, dict):
        return None
    lab = data.get("jupyterlab")
    build = lab.get("_build") if isinstance(lab, dict) else None
    name = data.get("name")
    if not isinstance(name, str) or not isinstance(build, dict) or not isinstance(build.get("load"), str):
        log.warning("ignoring %s: not a built labextension (no jupyterlab._build.load)", package_json)
        return None
    install_file = package_json.parent / "install.json"
    install = _read_json(install_file) if install_file.is_file() else None
    disables = lab.get("disabledExtensions") or []
    return FederatedExtension(name, str(data.get("version", "")), package_json.parent, dict(build),
                              install if isinstance(install, dict) else None,
                              tuple(d for d in disables if isinstance(d, str)), data)


def discover(folders: Iterable[Path]) -> dict[str, FederatedExtension]:
    """Every labextension in ``folders`` by name; earlier folders win. Blocking: call off-loop."""
    found: dict[str, FederatedExtension] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        candidates = sorted(folder.glob("[!@]*/package.json")) + sorted(folder.glob("@*/*/package.json"))
        for package_json in candidates:
            ext = _load(package_json)
            if ext is not None and ext.name not in found:
                found[ext.name] = ext
    return found


@dataclass
class PluginStates:
    """Disabled, deferred and locked plugins or extensions, as JupyterLab's page config lists them."""

    disabled: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    locked: list[str] = field(default_factory=list)

    def add(self, key: str, value: Any) -> None:
        """Merge a ``page_config.json`` value: a list of names or an object of name -> bool."""
        target = {"disabledExtensions": self.disabled, "deferredExtensions": self.deferred,
                  "lockedExtensions": self.locked}[key]
        if isinstance(value, dict):
            for name, on in value.items():
                if on and name not in target:
                    target.append(name)
                elif not on and name in target:
                    target.remove(name)  # a higher-precedence level re-enables it
        elif isinstance(value, list):
            target.extend(name for name in value if isinstance(name, str) and name not in target)


def plugin_states(config_path: Iterable[Path], app_settings_dir: Path, extra_disabled: Iterable[str],
                  extensions: Iterable[FederatedExtension]) -> PluginStates:
    """Roll up ``labconfig/page_config.json`` (system first, user last), the app settings dir's
    ``page_config.json``, extensions that disable others, and ``lab.disabled_extensions``."""
    states = PluginStates()
    files = [Path(d) / "labconfig" / PAGE_CONFIG_FILE for d in reversed(list(config_path))]
    files.insert(0, app_settings_dir / PAGE_CONFIG_FILE)
    for path in files:
        data = _read_json(path) if path.is_file() else None
        if isinstance(data, dict):
            for key in ("disabledExtensions", "deferredExtensions", "lockedExtensions"):
                if key in data:
                    states.add(key, data[key])
    for ext in extensions:
        states.add("disabledExtensions", list(ext.disables))
    states.add("disabledExtensions", list(extra_disabled))
    return states
