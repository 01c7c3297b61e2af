"""The enabled, disabled, deferred and locked state of lab plugins and labextensions, as
JupyterLab's page config lists them (the labextensions themselves are found by
:mod:`carme.labextensions`)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carme.jsonutil import read_json_or_none
from carme.labextensions import Labextension

log = logging.getLogger("carme.lab.plugin_states")

PAGE_CONFIG_FILE = "page_config.json"


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
                  extensions: Iterable[Labextension]) -> PluginStates:
    """Roll up ``labconfig/page_config.json`` (system first, user last), the app settings dir's
    ``page_config.json``, extensions that disable others, and ``lab.disabled_extensions``."""
    states = PluginStates()
    files = [Path(d) / "labconfig" / PAGE_CONFIG_FILE for d in reversed(list(config_path))]
    files.insert(0, app_settings_dir / PAGE_CONFIG_FILE)
    for path in files:
        data = read_json_or_none(path, log) if path.is_file() else None
        if isinstance(data, dict):
            for key in ("disabledExtensions", "deferredExtensions", "lockedExtensions"):
                if key in data:
                    states.add(key, data[key])
    for ext in extensions:
        states.add("disabledExtensions", list(ext.disables))
    states.add("disabledExtensions", list(extra_disabled))
    return states
