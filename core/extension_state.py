"""Installed extensions and their enabled state: what runs now, what the configuration says for
the next start, and persisting enabled or disabled at a config level.

Shared by ``carme extension`` (core/extension_cli.py) and the REST API ``/api/extensions``
(core/api/extensions.py). Enabled state is persisted as Jupyter persists server extensions: one
small JSON file per extension, ``<config dir>/carme_config.d/<name>.json`` =
``{"extensions": {"<name>": true}}``, in the config dir of the chosen level (``user``:
``jupyter_config_dir()``; ``sys-prefix``: ``sys.prefix/etc/jupyter``; ``system``: the first system
config dir).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from jupyter_core import paths as jupyter_paths

from . import config
from .contents.fileio import atomic_write
from .plugins import Plugins

LEVELS = ("user", "sys-prefix", "system")
ONLY_SOURCE = "create_app(extensions=...)"


def level_dir(level: str) -> Path:
    """The Jupyter config dir of a level, as ``jupyter server extension enable`` picks it."""
    if level == "user":
        return Path(jupyter_paths.jupyter_config_dir())
    if level == "sys-prefix":
        return Path(jupyter_paths.ENV_CONFIG_PATH[0])
    if level == "system":
        return Path(jupyter_paths.SYSTEM_CONFIG_PATH[0])
    raise ValueError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")


def state_file(level: str, name: str) -> Path:
    """The file that holds ``name``'s enabled state at ``level``."""
    return level_dir(level) / config.CONFIG_DIR / f"{name}.json"


def write_state(name: str, enabled: bool, level: str) -> Path:
    """Persist ``name``'s enabled state at ``level`` (atomically); the file written.

    Raises :class:`~carme.config.ConfigError` naming the file when it cannot be written."""
    path = state_file(level, name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {config.EXTENSIONS_KEY: {name: enabled}}
        atomic_write(str(path), (json.dumps(data, indent=2) + "\n").encode("utf-8"))
    except OSError as exc:
        hint = "" if level == "user" else " (try --user)"
        raise config.ConfigError(f"cannot write {path}: {exc.strerror}{hint}") from None
    return path


@dataclass
class ExtensionStatus:
    """One installed extension as the REST API reports it."""

    name: str
    distribution: str
    version: str
    running: bool  # loaded and serving in this process
    enabled: bool  # what the configuration says now, for the next start
    source: str  # the config file (or `default`, `environment`, ...) that decided ``enabled``
    error: str | None  # why it does not load, if it does not
    restart_needed: bool  # ``enabled`` differs from the state this process started with

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ExtensionStates:
    """The enabled state of every installed extension, for one server.

    Knows the layers of this run that are not config files (environment, command line,
    create_app arguments), so that what the next start will do is the config files as they are
    now plus those. Methods that read files or import extensions block: call them off the loop.
    """

    def __init__(self, plugins: Plugins, kept_layers: Iterable[config.ConfigLayer], *,
                 only: Iterable[str] | None, config_files: bool) -> None:
        self.plugins = plugins
        self.kept_layers = list(kept_layers)
        self.only = None if only is None else set(only)
        self.config_files = config_files

    def configured(self) -> dict[str, tuple[bool, str]]:
        """name -> (enabled, source) as the next start would decide it."""
        if self.only is not None:
            return {name: (name in self.only, ONLY_SOURCE) for name in self.plugins.extensions}
        files = [config.read_file(path) for path in config.config_files()] if self.config_files else []
        return config.extension_states([*files, *self.kept_layers])

    def describe(self) -> list[ExtensionStatus]:
        """Every installed extension, by name."""
        configured = self.configured()
        found = []
        for name, info in sorted(self.plugins.extensions.items()):
            enabled, source = configured.get(name, (True, "default"))
            found.append(ExtensionStatus(name, info.distribution, info.version, self.plugins.runs(name), enabled, source,
                                         self.plugins.probe(name), enabled != info.enabled))
        return found

    def status(self, name: str) -> ExtensionStatus:
        """One extension; :class:`KeyError` when none is installed by that name."""
        for found in self.describe():
            if found.name == name:
                return found
        raise KeyError(name)

    def set_enabled(self, name: str, enabled: bool, level: str) -> tuple[Path, ExtensionStatus]:
        """Persist the state at ``level``; the file written and the extension's status after it
        (``status.enabled`` may still differ when a layer of higher precedence decides)."""
        if name not in self.plugins.extensions:
            raise KeyError(name)
        path = write_state(name, enabled, level)
        return path, self.status(name)


__all__ = ["LEVELS", "ExtensionStates", "ExtensionStatus", "level_dir", "state_file", "write_state"]
