"""Layered settings: defaults < config files < ``CARME_*`` environment < CLI flags / create_app.

Settings are declared by plugins (:func:`carme.hooks.carme_register_settings`). The core's own are
top-level (``port``); an extension's live in a section named after it (``watch.polling``).

Config files are JSON, found in every Jupyter config directory (``jupyter_core.paths``):
``carme_config.d/*.json`` (sorted), then ``carme_config.json``, which wins within a directory;
directories earlier in ``jupyter_config_path()`` (user) win over later ones (system). A file looks
like ``{"port": 9000, "watch": {"polling": true}, "extensions": {"collab": false}}``.

Environment: ``CARME_PORT=9000``, ``CARME_WATCH__POLLING=true`` (two underscores before the key
of a section). Values that are not strings are parsed as JSON (``true``, ``[1, 2]``). An unknown
``CARME_*`` variable is a warning (other programs share the environment); an unknown key anywhere
else is an error.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_config_path

log = logging.getLogger("carme.config")

CONFIG_FILE = "carme_config.json"
CONFIG_DIR = "carme_config.d"
ENV_PREFIX = "CARME_"
# CARME_* variables that are not settings (read elsewhere, before settings exist).
NOT_SETTINGS = frozenset({"CARME_TRACE_HOOKS"})
EXTENSIONS_KEY = "extensions"


class ConfigError(ValueError):
    """A configuration value or key is wrong; the message names where, what and what was expected."""


@dataclass(frozen=True)
class Setting:
    """One declared setting.

    ``type`` is one of ``bool``, ``int``, ``float``, ``str``, ``list``, ``dict``; ``choices``
    restricts the value to a set; ``nullable`` allows None (meaning "not set"); ``minimum`` is the
    smallest value a number may take (a count or a duration below it is refused where it is set,
    not found out later by the service that reads it).
    """

    name: str
    type: type
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    nullable: bool = False
    minimum: int | float | None = None

    def expected(self) -> str:
        """A short description of what a valid value looks like, for error messages."""
        if self.choices:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        else:
            text = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
                    list: "a list", dict: "an object"}[self.type]
            if self.minimum is not None:
                text += f" >= {self.minimum:g}"
        return text + (" or null" if self.nullable else "")

    def coerce(self, value: Any, where: str, key: str) -> Any:
        """Check ``value`` (already JSON-decoded) against this setting; return it normalised."""
        given, ok = value, True
        if value is None:
            ok = self.nullable
        elif self.type is bool:
            ok = isinstance(value, bool)
        elif self.type is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif self.type is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            value = float(value) if ok else value
        else:
            ok = isinstance(value, self.type)
        if ok and self.choices and value is not None and value not in self.choices:
            ok = False
        if ok and self.minimum is not None and value is not None and value < self.minimum:
            ok = False
        if not ok:
            raise ConfigError(f"{where}: {key} = {given!r} is not valid: expected {self.expected()}")
        return value

    def parse_text(self, text: str, where: str, key: str) -> Any:
        """Parse a value given as text (environment variable, ``--set``)."""
        if self.type is str and not (self.nullable and text == "null"):
            return self.coerce(text, where, key)
        if self.type is bool and text.lower() in {"1", "yes", "on", "0", "no", "off"}:
            return text.lower() in {"1", "yes", "on"}
        try:
            value = json.loads(text)
        except ValueError:
            raise ConfigError(f"{where}: {key} = {text!r} is not valid: expected {self.expected()}") from None
        return self.coerce(value, where, key)


@dataclass
class ConfigLayer:
    """Raw values from one source: ``values`` maps dotted keys (``watch.polling``) to values."""

    source: str
    values: dict[str, Any] = field(default_factory=dict)
    extensions: dict[str, bool] = field(default_factory=dict)
    text: bool = False  # values are unparsed strings (environment, CLI --set)
    # Unknown keys are warned about, not refused: the environment is shared with other programs
    # (a script's own CARME_CMD must not stop carme); config files and arguments stay strict.
    lenient: bool = False


def config_files(paths: Iterable[str] | None = None) -> list[Path]:
    """Config files in increasing order of precedence (the last one wins)."""
    dirs = list(paths) if paths is not None else jupyter_config_path()
    files: list[Path] = []
    for directory in reversed(dirs):
        base = Path(directory)
        drop_in = base / CONFIG_DIR
        if drop_in.is_dir():
            files.extend(sorted(drop_in.glob("*.json")))
        if (base / CONFIG_FILE).is_file():
            files.append(base / CONFIG_FILE)
    return files


def _flatten(data: Mapping[str, Any], source: str) -> ConfigLayer:
    layer = ConfigLayer(source)
    for key, value in data.items():
        if key == EXTENSIONS_KEY:
            if not isinstance(value, dict) or not all(isinstance(v, bool) for v in value.values()):
                raise ConfigError(f"{source}: {key} must be an object of extension name -> true/false")
            layer.extensions.update(value)
        elif isinstance(value, dict) and not key.startswith("_"):
            # A section of an extension, or a dict-typed core setting: decided at resolve time.
            layer.values[key] = value
        else:
            layer.values[key] = value
    return layer


def read_file(path: Path) -> ConfigLayer:
    """Read one JSON config file into a layer; a parse error names the file and the line."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object at the top level")
    return _flatten(data, str(path))


def read_environment(environ: Mapping[str, str] | None = None) -> ConfigLayer:
    """Collect ``CARME_*`` variables: ``CARME_PORT`` -> ``port``, ``CARME_WATCH__POLLING`` -> ``watch.polling``."""
    environ = os.environ if environ is None else environ
    layer = ConfigLayer("environment", text=True, lenient=True)
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in NOT_SETTINGS:
            continue
        key = name[len(ENV_PREFIX):].lower().replace("__", ".")
        if key.startswith(EXTENSIONS_KEY + "."):
            ext = key.split(".", 1)[1]
            layer.extensions[ext] = Setting(ext, bool, True, "").parse_text(value, f"environment {name}", ext)
        else:
            layer.values[key] = (name, value)
    return layer


def read_layers(files: bool = True, environ: Mapping[str, str] | None = None) -> list[ConfigLayer]:
    """The config-file layers (lowest precedence first), then the environment layer."""
    layers = [read_file(path) for path in config_files()] if files else []
    layers.append(read_environment(environ))
    return layers


def overrides_layer(source: str, values: Mapping[str, Any], extensions: Mapping[str, bool] | None = None) -> ConfigLayer:
    """A layer from Python values (create_app arguments, CLI flags); dotted or nested keys."""
    layer = _flatten(dict(values), source)
    layer.extensions.update(extensions or {})
    return layer


def extension_states(layers: Iterable[ConfigLayer]) -> dict[str, tuple[bool, str]]:
    """Enabled state of each extension named anywhere in the layers, with the source that set it."""
    states: dict[str, tuple[bool, str]] = {}
    for layer in layers:
        for name, enabled in layer.extensions.items():
            states[name] = (enabled, layer.source)
    return states


class Settings(Mapping[str, Any]):
    """Resolved settings: a read-only mapping of dotted key -> value, with the source of each."""

    def __init__(self, specs: Mapping[str, Setting]) -> None:
        self.specs = dict(specs)
        self._values: dict[str, Any] = {key: spec.default for key, spec in self.specs.items()}
        self._sources: dict[str, str] = dict.fromkeys(self.specs, "default")

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def source(self, key: str) -> str:
        """Where the value of ``key`` came from: ``default``, a file path, ``environment ...``, ..."""
        return self._sources[key]

    def section(self, name: str) -> dict[str, Any]:
        """The settings of one extension section, without the section prefix."""
        prefix = name + "."
        return {k[len(prefix):]: v for k, v in self._values.items() if k.startswith(prefix)}

    def set(self, key: str, value: Any, source: str) -> None:
        """Set a value (validated); used while loading and by tests."""
        spec = self.specs.get(key)
        if spec is None:
            raise ConfigError(f"{source}: unknown setting {key!r}")
        self._values[key] = spec.coerce(value, source, key)
        self._sources[key] = source


def resolve(specs: Mapping[str, Setting], layers: Iterable[ConfigLayer], ignored_sections: Iterable[str] = ()) -> Settings:
    """Apply the layers in order over the defaults; unknown keys and bad values are errors.

    ``ignored_sections`` are sections of installed but disabled extensions: their keys are
    accepted and ignored, so disabling an extension never breaks a config file.
    """
    settings = Settings(specs)
    sections = {key.split(".", 1)[0] for key in specs if "." in key}
    ignored = set(ignored_sections)
    for layer in layers:
        for key, raw in layer.values.items():
            if layer.text:
                env_name, text = raw
                if key.split(".", 1)[0] in ignored and key not in specs:
                    continue
                spec = specs.get(key)
                if spec is None:
                    message = f"{layer.source} {env_name}: unknown setting {key!r}; {_known(specs)}"
                    if not layer.lenient:
                        raise ConfigError(message)
                    log.warning("%s (ignored)", message)
                    continue
                settings.set(key, spec.parse_text(text, f"{layer.source} {env_name}", key), f"{layer.source} {env_name}")
            elif key in specs:
                settings.set(key, raw, layer.source)
            elif isinstance(raw, dict) and key in sections:
                for sub, value in raw.items():
                    dotted = f"{key}.{sub}"
                    if dotted not in specs:
                        raise ConfigError(f"{layer.source}: unknown setting {dotted!r}; {_known(specs, key)}")
                    settings.set(dotted, value, layer.source)
            elif "." in key and key in specs:
                settings.set(key, raw, layer.source)
            elif key.split(".", 1)[0] in ignored:
                continue
            elif key in sections:
                raise ConfigError(f"{layer.source}: {key} = {raw!r} is not valid: expected an object of "
                                  f"{key!r} settings ({_known(specs, key)})")
            else:
                raise ConfigError(f"{layer.source}: unknown setting {key!r}; {_known(specs)}")
    return settings


def _known(specs: Mapping[str, Setting], section: str | None = None) -> str:
    if section is None:
        names = sorted(k for k in specs if "." not in k)
        sections = sorted({k.split(".", 1)[0] for k in specs if "." in k})
        return "expected one of: " + ", ".join(names) + (" or a section: " + ", ".join(sections) if sections else "")
    names = sorted(k.split(".", 1)[1] for k in specs if k.startswith(section + "."))
    return f"section {section!r} has: " + ", ".join(names)
