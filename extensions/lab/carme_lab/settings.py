"""JupyterLab settings: plugin schemas, admin overrides and per-user settings files.

A plugin ``@jupyterlab/notebook-extension:tracker`` has its schema at
``<schemas root>/@jupyterlab/notebook-extension/tracker.json`` (the app's schemas folder, or
``<labextension>/schemas/`` for a prebuilt extension) and its user settings at
``<user settings dir>/@jupyterlab/notebook-extension/tracker.jupyterlab-settings``. User settings
are JSON5 text ("raw", comments kept as the user wrote them); they are validated against the
schema on save. Defaults in the schemas are replaced by overrides (``overrides.json`` in the app
settings folder, ``labconfig/default_settings_overrides.json`` in the Jupyter config path).

Everything here blocks on the file system: the routes call it through a worker thread.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import json5
from jsonschema import Draft7Validator
from jsonschema.exceptions import SchemaError, ValidationError
from jsonschema.validators import validator_for

from carme.errors import ApiError

from .fileio import atomic_write_text, file_times

log = logging.getLogger("carme.lab.settings")

SETTINGS_SUFFIX = ".jupyterlab-settings"
_PLUGIN_ID = re.compile(r"^(?:@[\w.\-]+/)?[\w.\-]+:[\w.\-]+$")


@dataclass(frozen=True)
class SchemaSource:
    """A folder of schemas (``<package name>/<plugin>.json`` below it) and their version."""

    root: Path
    version: str


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


def _read_json5(path: Path) -> Any:
    return json5.loads(path.read_text(encoding="utf-8"))


def read_overrides(files: Iterable[Path]) -> dict[str, dict[str, Any]]:
    """Merge override files (later ones win): ``{plugin id: {setting: default}}``."""
    merged: dict[str, dict[str, Any]] = {}
    for path in files:
        if not path.is_file():
            continue
        try:
            data = _read_json5(path)
        except (OSError, ValueError) as exc:
            log.warning("ignoring settings overrides %s: %s", path, exc)
            continue
        if not isinstance(data, dict):
            log.warning("ignoring settings overrides %s: expected an object of plugin id -> settings", path)
            continue
        for plugin, values in data.items():
            if isinstance(values, dict):
                _deep_merge(merged.setdefault(plugin, {}), values)
    return merged


def apply_overrides(schema: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Put override values in as the schema's defaults (objects merged key by key)."""
    properties = schema.setdefault("properties", {})
    for key, value in overrides.items():
        prop = properties.get(key)
        if not isinstance(prop, dict):
            properties[key] = {"default": copy.deepcopy(value)}
        elif isinstance(prop.get("default"), dict) and isinstance(value, dict):
            _deep_merge(prop["default"], value)
        else:
            prop["default"] = copy.deepcopy(value)
    return schema


class SettingsStore:
    """Reads schemas and user settings, validates and writes user settings."""

    def __init__(self, sources: Sequence[SchemaSource], user_dir: Path, override_files: Sequence[Path]) -> None:
        self.sources = list(sources)
        self.user_dir = user_dir
        self.override_files = list(override_files)
        self._schema_cache: dict[Path, tuple[tuple[int, int], dict[str, Any]]] = {}

    # -- schemas -------------------------------------------------------------------------------

    def _schema_files(self) -> dict[str, tuple[Path, str]]:
        """Plugin id -> (schema file, version); the first source that has an id wins."""
        found: dict[str, tuple[Path, str]] = {}
        for source in self.sources:
            if not source.root.is_dir():
                continue
            files = sorted(source.root.glob("[!@]*/*.json")) + sorted(source.root.glob("@*/*/*.json"))
            for path in files:
                if path.name == "package.json":
                    continue
                package = path.parent.relative_to(source.root).as_posix()
                found.setdefault(f"{package}:{path.stem}", (path, source.version))
        return found

    def _load_schema(self, path: Path) -> dict[str, Any]:
        stat = path.stat()
        key = (stat.st_mtime_ns, stat.st_size)
        cached = self._schema_cache.get(path)
        if cached is None or cached[0] != key:
            schema = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(schema, dict):
                raise ValueError(f"schema {path} is not a JSON object")
            cached = (key, schema)
            self._schema_cache[path] = cached
        return copy.deepcopy(cached[1])

    # -- user settings ---------------------------------------------------------------------------

    def user_file(self, plugin_id: str) -> Path:
        package, _, plugin = plugin_id.rpartition(":")
        return self.user_dir / package / (plugin + SETTINGS_SUFFIX)

    def _entry(self, plugin_id: str, schema_path: Path, version: str,
               overrides: dict[str, dict[str, Any]]) -> dict[str, Any]:
        schema = apply_overrides(self._load_schema(schema_path), overrides.get(plugin_id, {}))
        entry: dict[str, Any] = {"id": plugin_id, "schema": schema, "version": version, "raw": "{}",
                                 "settings": {}, "warning": None, "last_modified": None, "created": None}
        path = self.user_file(plugin_id)
        try:
            raw = path.read_text(encoding="utf-8")
            stat = path.stat()
        except FileNotFoundError:
            return entry
        entry["created"], entry["last_modified"] = file_times(stat)
        try:
            settings = json5.loads(raw) if raw.strip() else {}
            if not isinstance(settings, dict):
                raise ValueError("expected an object")
            _validator(schema).validate(settings)
        except (ValueError, ValidationError) as exc:
            # Keep the file as the user wrote it; serve the defaults and say why.
            entry["warning"] = f"Failed loading user settings ({path}): {_message(exc)}"
            log.warning("%s", entry["warning"])
            return entry
        entry["raw"], entry["settings"] = raw, settings
        return entry

    def list(self, ids_only: bool = False) -> list[dict[str, Any]]:
        """Every plugin with a schema, with its user settings (or just ``{"id"}`` entries)."""
        files = self._schema_files()
        if ids_only:
            return [{"id": plugin_id} for plugin_id in sorted(files)]
        overrides = read_overrides(self.override_files)
        return [self._entry(plugin_id, path, version, overrides) for plugin_id, (path, version) in sorted(files.items())]

    def get(self, plugin_id: str) -> dict[str, Any]:
        """One plugin's schema and user settings; 404 when no schema has that id."""
        path, version = self._find(plugin_id)
        return self._entry(plugin_id, path, version, read_overrides(self.override_files))

    def put(self, plugin_id: str, raw: Any) -> None:
        """Validate JSON5 ``raw`` against the plugin's schema, then save it as written."""
        if not isinstance(raw, str):
            raise ApiError(400, "settings body must be an object with a string 'raw' (JSON5 text)", "Bad Request")
        path, _version = self._find(plugin_id)
        try:
            settings = json5.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            raise ApiError(400, f"settings of {plugin_id} are not valid JSON5: {exc}", "Bad Request") from None
        if not isinstance(settings, dict):
            raise ApiError(400, f"settings of {plugin_id} must be a JSON5 object, not {type(settings).__name__}",
                           "Bad Request")
        schema = apply_overrides(self._load_schema(path), read_overrides(self.override_files).get(plugin_id, {}))
        try:
            _validator(schema).validate(settings)
        except ValidationError as exc:
            raise ApiError(400, f"settings of {plugin_id} do not match its schema: {_message(exc)}",
                           "Bad Request") from None
        atomic_write_text(self.user_file(plugin_id), raw)

    def _find(self, plugin_id: str) -> tuple[Path, str]:
        if not _PLUGIN_ID.match(plugin_id):
            raise ApiError(404, f"{plugin_id!r} is not a plugin id (expected package:plugin)", "Not Found")
        found = self._schema_files().get(plugin_id)
        if found is None:
            raise ApiError(404, f"no settings schema for plugin {plugin_id!r}", "Not Found")
        return found


def _validator(schema: dict[str, Any]) -> Any:
    cls = validator_for(schema, default=Draft7Validator)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        log.warning("schema %s is itself invalid (%s); checking against Draft 7 loosely", schema.get("title"), exc.message)
        return Draft7Validator({})
    return cls(schema)


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        where = "/".join(str(p) for p in exc.absolute_path)
        return f"{where}: {exc.message}" if where else exc.message
    return str(exc)
