"""Kernelspecs: discovery in the Jupyter data paths and the /api/kernelspecs model.

A kernelspec is a folder ``kernels/<name>/`` holding ``kernel.json`` and optional resources
(``logo-*`` images, ``kernel.js``, ``kernel.css``), found in ``jupyter_path("kernels")``; the
first folder of a name wins (user before system), names are matched case-insensitively, as
jupyter_client does. When ipykernel is importable and no folder defines ``python3``, a built-in
``python3`` runs ipykernel in the server's own interpreter. A broken ``kernel.json`` is skipped
with a warning naming the file; the other specs still list.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from jupyter_core.paths import jupyter_path

log = logging.getLogger("carme.kernels.specs")

NAME_RE = re.compile(r"^[a-z0-9._\-]+$", re.IGNORECASE)
NATIVE_KERNEL_NAME = "python3"
RESOURCE_FILES = ("kernel.js", "kernel.css")


class NoSuchKernelSpec(KeyError):
    """No kernelspec of that name."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"No such kernel named {self.name}"


@dataclass
class KernelSpec:
    """One kernelspec: the parsed kernel.json plus the folder its resources come from."""

    name: str
    argv: list[str]
    display_name: str
    language: str = ""
    env: dict[str, str] = field(default_factory=dict)
    interrupt_mode: str = "signal"
    metadata: dict[str, Any] = field(default_factory=dict)
    kernel_protocol_version: str = "5.0"
    resource_dir: Path | None = None

    @classmethod
    def from_dict(cls, name: str, data: Any, resource_dir: Path | None) -> KernelSpec:
        """Validate a kernel.json document; ValueError names the first thing wrong."""
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        argv = data.get("argv")
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise ValueError("'argv' must be a non-empty list of strings")
        display_name = data.get("display_name", name)
        if not isinstance(display_name, str):
            raise ValueError("'display_name' must be a string")
        env = data.get("env") or {}
        if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
            raise ValueError("'env' must be an object of strings")
        interrupt_mode = data.get("interrupt_mode", "signal")
        if interrupt_mode not in ("signal", "message"):
            raise ValueError("'interrupt_mode' must be 'signal' or 'message'")
        metadata = data.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise ValueError("'metadata' must be an object")
        return cls(name, argv, display_name, str(data.get("language", "")), dict(env), interrupt_mode, metadata,
                   str(data.get("kernel_protocol_version", "5.0")), resource_dir)

    def to_dict(self) -> dict[str, Any]:
        """The ``spec`` part of the API model (kernel.json's fields)."""
        return {"argv": self.argv, "env": self.env, "display_name": self.display_name, "language": self.language,
                "interrupt_mode": self.interrupt_mode, "metadata": self.metadata,
                "kernel_protocol_version": self.kernel_protocol_version}

    def resource_names(self) -> list[str]:
        """Resource files served for this spec: ``logo-*`` images, kernel.js, kernel.css."""
        if self.resource_dir is None or not self.resource_dir.is_dir():
            return []
        return sorted(p.name for p in self.resource_dir.iterdir()
                      if p.is_file() and (p.name.startswith("logo-") or p.name in RESOURCE_FILES))

    def resource_path(self, filename: str) -> Path | None:
        """The file of a resource, or None when it is not one (no traversal: names only)."""
        if "/" in filename or "\\" in filename or filename not in self.resource_names():
            return None
        assert self.resource_dir is not None
        return self.resource_dir / filename


def _ipykernel_resources() -> Path | None:
    """ipykernel's bundled logos, found without importing ipykernel (which is slow)."""
    found = importlib.util.find_spec("ipykernel")
    if found is None or not found.submodule_search_locations:
        return None
    return Path(next(iter(found.submodule_search_locations))) / "resources"


def native_spec() -> KernelSpec | None:
    """The built-in ``python3``: ipykernel in this interpreter, when ipykernel is installed."""
    resources = _ipykernel_resources()
    if resources is None:
        return None
    return KernelSpec(NATIVE_KERNEL_NAME, [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                      "Python 3 (ipykernel)", "python", metadata={"debugger": True},
                      kernel_protocol_version="5.3", resource_dir=resources if resources.is_dir() else None)


class KernelSpecManager:
    """Finds kernelspecs; methods do file I/O, so call them off the event loop."""

    def __init__(self, default_name: str = NATIVE_KERNEL_NAME, dirs: list[str] | None = None) -> None:
        self.default_name = default_name
        self._dirs = dirs

    def kernel_dirs(self) -> list[Path]:
        return [Path(d) for d in (self._dirs if self._dirs is not None else jupyter_path("kernels"))]

    def find(self) -> dict[str, Path]:
        """name -> spec folder, first folder of a name wins."""
        found: dict[str, Path] = {}
        for directory in self.kernel_dirs():
            try:
                entries = sorted(directory.iterdir())
            except OSError:
                continue
            for entry in entries:
                name = entry.name.lower()
                if NAME_RE.match(name) and name not in found and (entry / "kernel.json").is_file():
                    found[name] = entry
        return found

    def _load(self, name: str, folder: Path) -> KernelSpec:
        path = folder / "kernel.json"
        try:
            data = orjson.loads(path.read_bytes())
            return KernelSpec.from_dict(name, data, folder)
        except (OSError, ValueError) as exc:
            raise ValueError(f"kernelspec {path} is broken: {exc}") from None

    def all_specs(self) -> dict[str, KernelSpec]:
        """Every valid kernelspec by name; a broken one is skipped with a warning naming its file."""
        specs: dict[str, KernelSpec] = {}
        found = self.find()
        for name, folder in found.items():
            try:
                specs[name] = self._load(name, folder)
            except ValueError as exc:
                log.warning("skipping %s", exc)
        if NATIVE_KERNEL_NAME not in found:
            native = native_spec()
            if native is not None:
                specs[NATIVE_KERNEL_NAME] = native
        return specs

    def get(self, name: str) -> KernelSpec:
        """The kernelspec of ``name``; :class:`NoSuchKernelSpec` when unknown or broken."""
        folder = self.find().get(name.lower())
        if folder is not None:
            try:
                return self._load(name.lower(), folder)
            except ValueError as exc:
                log.warning("%s", exc)
                raise NoSuchKernelSpec(name) from None
        if name.lower() == NATIVE_KERNEL_NAME:
            native = native_spec()
            if native is not None:
                return native
        raise NoSuchKernelSpec(name)

    def model(self, spec: KernelSpec, base_url: str = "/") -> dict[str, Any]:
        """One entry of /api/kernelspecs: ``{name, spec, resources}`` with resource URLs."""
        prefix = base_url.rstrip("/") + f"/kernelspecs/{spec.name}/"
        resources: dict[str, str] = {}
        for filename in spec.resource_names():
            key = filename.rsplit(".", 1)[0] if filename.startswith("logo-") else filename
            resources[key] = prefix + filename
        return {"name": spec.name, "spec": spec.to_dict(), "resources": resources}

    def models(self, base_url: str = "/") -> dict[str, Any]:
        """The /api/kernelspecs body: ``{"default": name, "kernelspecs": {name: model}}``."""
        specs = self.all_specs()
        default = self.default_name if self.default_name in specs else next(iter(sorted(specs)), self.default_name)
        return {"default": default, "kernelspecs": {name: self.model(s, base_url) for name, s in sorted(specs.items())}}
