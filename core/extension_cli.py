"""``carme extension list|enable|disable`` and ``carme config``.

Enabled state is persisted at the level chosen (``--sys-prefix`` by default) as
core/extension_state.py says; the REST API /api/extensions does the same for the user level.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from . import config
from .config import ConfigError
from .extension_state import LEVELS, level_dir, state_file, write_state
from .plugins import ENTRY_POINT_GROUP, Plugins


def _load(layers: list[config.ConfigLayer]) -> Plugins:
    from .app import load_plugins

    plugins, _settings = load_plugins(layers)
    return plugins


def _table(rows: list[list[str]], out: TextIO, max_width: int = 40) -> None:
    # Columns are padded up to max_width; a longer cell (a long list value) overflows its row
    # instead of widening every row.
    widths = [min(max_width, max(len(row[i]) for row in rows)) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n")


def list_extensions(out: TextIO | None = None) -> int:
    """Print every installed extension: name, distribution, version, state, its source, load status."""
    out = out or sys.stdout
    plugins = _load(config.read_layers())
    if not plugins.extensions:
        out.write(f"No carme extensions are installed (entry-point group {ENTRY_POINT_GROUP!r}).\n")
        return 0
    rows = [["NAME", "DISTRIBUTION", "VERSION", "STATE", "SET BY", "LOADS"]]
    for name, info in sorted(plugins.extensions.items()):
        error = plugins.probe(name)
        rows.append([name, info.distribution, info.version, "enabled" if info.enabled else "disabled",
                     info.source, "ok" if error is None else f"ERROR {error}"])
    _table(rows, out)
    return 0


def set_enabled(name: str, enabled: bool, level: str, out: TextIO | None = None) -> int:
    """Persist the enabled state of ``name`` at ``level``; unknown names are an error."""
    out = out or sys.stdout
    plugins = _load(config.read_layers())
    if name not in plugins.extensions:
        known = ", ".join(sorted(plugins.extensions)) or "none"
        raise ConfigError(f"no installed extension is named {name!r}; installed extensions: {known}")
    path = write_state(name, enabled, level)
    out.write(f"{'Enabled' if enabled else 'Disabled'} extension {name!r} in {path}\n")
    # A higher-precedence source may still say otherwise: say so rather than let it surprise.
    effective = config.extension_states(config.read_layers()).get(name, (True, "default"))
    if effective[0] != enabled:
        out.write(f"Note: {name!r} stays {'enabled' if effective[0] else 'disabled'}, "
                  f"as set by {effective[1]}, which takes precedence.\n")
    return 0


def _show(value: Any) -> str:
    return json.dumps(value)


def print_config(out: TextIO | None = None) -> int:
    """Print every setting of the core and the enabled extensions: value, where the value comes
    from, the plugin that declares it, description."""
    out = out or sys.stdout
    from .app import load_plugins

    plugins, settings = load_plugins(config.read_layers())
    rows = [["SETTING", "VALUE", "SOURCE", "DECLARED BY", "DESCRIPTION"]]
    for key in sorted(settings, key=lambda k: ("." in k, k)):
        value = settings[key]
        shown = '"(hidden)"' if key == "token" and value else _show(value)
        rows.append([key, shown, settings.source(key), plugins.declared_by[key], settings.specs[key].help])
    _table(rows, out)
    return 0


def run_extension_command(args: argparse.Namespace) -> int:
    """Dispatch ``carme extension ACTION``."""
    if args.ext_command == "list":
        return list_extensions()
    return set_enabled(args.name, args.ext_command == "enable", args.level or "sys-prefix")


__all__ = ["LEVELS", "level_dir", "list_extensions", "print_config", "run_extension_command",
           "set_enabled", "state_file"]
