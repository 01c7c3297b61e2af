"""Page templates: folders of jinja2 files found on a search path, each extending a base.

A template is a folder ``<name>/`` holding ``page.html`` (a dashboard), ``tree.html`` (a folder
listing), ``busy.html`` (the 503 page when every kernel is taken) and ``error.html`` (404 and
other errors), any of which it may leave to its base; ``static/`` for its assets (served at
``dashboards/templates/<name>/static/``); and ``conf.json``::

    {"base_template": "lab", "settings": {"theme": "dark"}, "resources": {"logo": "logo.svg"}}

``base_template`` names the folder it extends (default ``base``, the root of every chain);
``settings`` fills in dashboards settings nobody set (see :data:`.settings.TEMPLATE_SETTINGS`);
``resources`` is handed to the templates as ``resources``. Templates are searched in the
``dashboards.template_paths`` setting, then ``<jupyter data path>/carme/dashboards/templates``,
then the built-in ones; the first folder of a name wins.

File lookup goes down the chain (the template's own files first, then its base's); a file of a
given template (or, when it has none, of the nearest of its bases) is also reachable by
``<name>/<file>``, which is how a template extends its base's page: ``{% extends "lab/page.html" %}``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from jupyter_core.paths import jupyter_path

from carme.config import ConfigError

log = logging.getLogger("carme.dashboards.templates")

BUILTIN_DIR = Path(__file__).parent / "templates"
ROOT_TEMPLATE = "base"
CONF_FILE = "conf.json"


class BrokenTemplate(ConfigError):
    """A template that is installed but cannot be used: the server admin's to fix.

    ``problem`` names the file and what is wrong with it, relative to the template's folder (fit
    for a visitor's error page); the message says where that folder is (for the log).
    """

    def __init__(self, name: str, folder: Path, problem: str) -> None:
        super().__init__(f"dashboards template {name!r} ({folder}) is broken: {problem}")
        self.name = name
        self.problem = problem


@dataclass(frozen=True)
class Template:
    """One template folder and what its conf.json says."""

    name: str
    path: Path
    base: str | None
    settings: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)


def search_path(extra: Iterable[str | Path] = ()) -> list[Path]:
    """Folders holding template folders, first wins: settings, Jupyter data path, built-ins."""
    return [*(Path(p).expanduser() for p in extra),
            *(Path(p) for p in jupyter_path("carme", "dashboards", "templates")), BUILTIN_DIR]


def _read_conf(folder: Path, name: str) -> Template:
    conf_path = folder / CONF_FILE
    conf: Any = {}
    if conf_path.is_file():
        try:
            conf = json.loads(conf_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BrokenTemplate(name, folder, f"{CONF_FILE}: cannot read the template settings: {exc}") from None
    if not isinstance(conf, dict):
        raise BrokenTemplate(name, folder, f"{CONF_FILE}: expected a JSON object")
    base = conf.get("base_template", None if name == ROOT_TEMPLATE else ROOT_TEMPLATE)
    for key, kind in (("base_template", str), ("settings", dict), ("resources", dict)):
        if key in conf and not isinstance(conf[key], kind):
            raise BrokenTemplate(name, folder,
                                 f"{CONF_FILE}: {key} must be a {'string' if kind is str else 'JSON object'}")
    return Template(name, folder, base, dict(conf.get("settings") or {}), dict(conf.get("resources") or {}))


class ChainLoader(jinja2.BaseLoader):
    """Files of a template chain: ``page.html`` from the first template of the chain that has it;
    ``lab/page.html`` from ``lab`` or, if ``lab`` has none, from the first of its bases that does."""

    def __init__(self, chain: list[Template]) -> None:
        self.chain = chain
        self.loaders = [jinja2.FileSystemLoader(t.path) for t in chain]

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str | None, Any]:
        start = 0
        prefix, _, rest = template.partition("/")
        names = [t.name for t in self.chain]
        if rest and prefix in names:
            start, template = names.index(prefix), rest
        for loader in self.loaders[start:]:
            try:
                return loader.get_source(environment, template)
            except jinja2.TemplateNotFound:
                continue
        raise jinja2.TemplateNotFound(template)


class Templates:
    """Finds templates and builds the jinja2 environment of each (cached per name)."""

    def __init__(self, roots: list[Path]) -> None:
        self.roots = roots
        self._environments: dict[str, tuple[list[Template], jinja2.Environment]] = {}

    def find(self, name: str) -> Template:
        """The first folder called ``name`` on the search path; ConfigError listing what exists."""
        if not name or "/" in name or name.startswith("."):
            raise ConfigError(f"dashboards.template: {name!r} is not a template name")
        for root in self.roots:
            folder = root / name
            if _is_dir(folder):
                return _read_conf(folder, name)
        raise ConfigError(f"dashboards.template: no template {name!r} in {', '.join(map(str, self.roots))}; "
                          f"found: {', '.join(self.available()) or 'none'}")

    def available(self) -> list[str]:
        names = {child.name for root in self.roots if root.is_dir() for child in root.iterdir() if child.is_dir()}
        return sorted(n for n in names if not n.startswith((".", "_")))

    def chain(self, name: str) -> list[Template]:
        """``name``, its base, its base's base ... down to ``base``. A ConfigError when ``name`` is
        not installed; :class:`BrokenTemplate` when its chain loops or names a missing base."""
        chain: list[Template] = []
        current: str | None = name
        while current is not None:
            if any(t.name == current for t in chain):
                raise BrokenTemplate(name, chain[0].path, f"{CONF_FILE}: the base_template chain loops: "
                                     + " -> ".join([*(t.name for t in chain), current]))
            try:
                template = self.find(current)
            except BrokenTemplate:
                raise
            except ConfigError:
                if not chain:
                    raise
                raise BrokenTemplate(name, chain[0].path, f"{CONF_FILE} of {chain[-1].name!r}: its base_template "
                                     f"{current!r} is not installed") from None
            chain.append(template)
            current = template.base
        return chain

    def environment(self, name: str) -> tuple[list[Template], jinja2.Environment]:
        """The chain of ``name`` and its jinja2 environment (async, autoescaped)."""
        cached = self._environments.get(name)
        if cached is None:
            chain = self.chain(name)
            env = jinja2.Environment(loader=ChainLoader(chain), enable_async=True, autoescape=True,
                                     trim_blocks=True, lstrip_blocks=True)
            cached = self._environments[name] = (chain, env)
        return cached

    def static_file(self, name: str, relative: str) -> Path | None:
        """A file of ``name``'s ``static/`` folder (or of a base's), never outside those folders."""
        parts = [p for p in relative.split("/") if p]
        if not parts or any(p in ("..", ".") or p.startswith(".") or "\\" in p for p in parts):
            return None
        try:
            chain = self.chain(name)
        except ConfigError:
            return None
        for template in chain:
            static = (template.path / "static").resolve()
            candidate = static.joinpath(*parts).resolve()
            try:
                if static in candidate.parents and candidate.is_file():
                    return candidate
            except OSError:  # a name no file can have (too long): not there
                continue
        return None


def _is_dir(path: Path) -> bool:
    """``path.is_dir()``, with a name no folder can have (too long, a visitor's pick) a False."""
    try:
        return path.is_dir()
    except OSError:
        return False
