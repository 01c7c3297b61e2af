"""The ``dashboards.*`` settings (named after Voila's where they mean the same) and the checked
configuration of one render (the settings, with a template's ``conf.json`` filling in the ones
nobody set)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from carme.config import ConfigError, Setting

from .forks import MAX_SERVERS

# Voila's defaults: images may be served next to a notebook, notebooks and scripts never.
DEFAULT_FILE_ALLOWLIST = [r".*\.(png|jpg|jpeg|gif|svg|webp)"]
DEFAULT_FILE_DENYLIST = [r".*\.(ipynb|py)"]
THEMES = ("light", "dark")
OVERRIDES = ("YES", "NOTEBOOK", "NO")
# Settings a template's conf.json may set (when no config file, variable or flag did).
TEMPLATE_SETTINGS = ("strip_sources", "show_tracebacks", "theme", "allow_errors", "cell_timeout")
# Of those, what a template a *visitor* picked (?voila-template=) may not change: the server's
# choice of what a page reveals and how it runs stands.
GUARDED_SETTINGS = ("strip_sources", "show_tracebacks", "allow_errors", "cell_timeout")


def declared() -> list[Setting]:
    """The settings of the ``dashboards`` section."""
    return [
        # What a page shows.
        Setting("strip_sources", bool, True, "Keep code out of the page and off the visitor's websocket "
                "(false shows each code cell's source above its outputs)"),
        Setting("show_tracebacks", bool, False, "Show the error and traceback of a failed cell "
                "(default: a generic message, and stderr output is dropped, as Voila)"),
        Setting("template", str, "lab", "Page template: a folder name on the template path"),
        Setting("theme", str, "light", "Page theme", choices=THEMES),
        Setting("allow_template_override", str, "YES", "Who may pick another template than dashboards.template: "
                "YES the visitor (?voila-template=NAME) or the notebook (metadata.voila.template), NOTEBOOK only "
                "the notebook, NO nobody (Voila's setting; a visitor's pick changes only the look)",
                choices=OVERRIDES),
        Setting("allow_theme_override", str, "YES", "The same for the theme (?voila-theme=, metadata.voila.theme)",
                choices=OVERRIDES),
        Setting("template_paths", list, [], "More folders of templates, searched before the Jupyter data "
                "path's dashboards/templates and the built-in ones"),
        # How a notebook runs.
        Setting("kernel_name", str, None, "Kernelspec for every dashboard (default: the notebook's own, "
                "else one of its language, else default_kernel_name)", nullable=True),
        Setting("cell_timeout", float, None, "Seconds a cell may run before the kernel is interrupted and the "
                "run ends with a timeout error (null: no limit)", nullable=True, minimum=0),
        Setting("allow_errors", bool, False, "Go on running cells after one fails (nbclient's allow_errors)"),
        Setting("extension_language_mapping", dict, {}, "Scripts that are dashboards too: file extension -> "
                "language, e.g. {\".py\": \"python\"} (Voila's setting; percent-format cells are read, else the "
                "script is one cell; `carme dashboard app.py` maps .py itself)"),
        Setting("widget_subshells", bool, False, "Handle the page's widget messages on the subshells the page "
                "sends them on, so widgets answer while later cells still run (Python kernels with subshells, "
                "ipykernel >= 7; a cell that awaits a widget change then no longer gets it: see the README)"),
        Setting("http_header_envs", list, [], "Request headers put in the kernel's environment as HTTP_<NAME>, "
                "as Voila does (e.g. ['Accept-Language'])"),
        # Kernel lifetimes.
        Setting("grace_period", float, 30.0, "Seconds a visit's kernel lives on once its page has no websocket "
                "(a reload within this time gets the same kernel back)", minimum=0),
        Setting("connect_timeout", float, 60.0, "Seconds after its render a page has to open its websocket; "
                "a kernel never connected to is shut down then", minimum=0),
        Setting("max_kernels", int, 0, "Most live dashboard kernels (visits and pooled); past it a visitor "
                "waits in the queue or gets a 503 'busy' page (0: no limit)", minimum=0),
        Setting("queue_size", int, 0, "Visitors who may wait for a kernel when max_kernels is reached, shown "
                "their place in the queue (0: no queue, the busy page at once)", minimum=0),
        Setting("pool_size", int, 0, "Preheated kernels kept ready per notebook, refilled in the background "
                "(a pool starts on a notebook's first visit, or at start-up for pool_notebooks)", minimum=0),
        Setting("fork_kernels", bool, True, "Start Python (ipykernel) kernels by forking a warm process that "
                "has imported ipykernel once, instead of a new Python each time: a fresh kernel per visit "
                "in a fraction of the time (other kernels, and a failed warm-up, start the usual way)"),
        Setting("max_fork_servers", int, MAX_SERVERS, "Most fork servers kept (one per start-up environment: Python, "
                "LANG, TZ ...); past it the least recently used one without kernels is stopped (at least 1; "
                "fork_kernels false turns them off)", minimum=1),
        Setting("pool_notebooks", list, [], "Notebooks (paths under the root) whose pools fill at start-up"),
        # Files and assets.
        Setting("file_allowlist", list, DEFAULT_FILE_ALLOWLIST, "Regular expressions: files under the root "
                "served at dashboards/files/ must match one (whole path, case-insensitive)"),
        Setting("file_denylist", list, DEFAULT_FILE_DENYLIST, "Regular expressions: and match none of these "
                "(notebooks are never served, whatever the lists say)"),
        Setting("extra_labextensions_path", list, [], "More folders of prebuilt labextensions (widget "
                "libraries), searched before the Jupyter data path's labextensions"),
        Setting("labextensions_denylist", list, [], "Labextensions never offered to dashboard pages, by name"),
        # App mode (`carme dashboard`).
        Setting("app_mode", bool, False, "Serve only dashboards: their pages, assets and visitors' own kernel "
                "websockets; no JupyterLab, no contents or kernels API (set by `carme dashboard`)"),
        Setting("notebook", str, "", "In app mode, the one notebook served at / (a path under the root; "
                "empty: the tree of the root)"),
    ]



@dataclass(frozen=True)
class RenderOptions:
    """What one render needs to know: the settings after the template's conf.json."""

    template: str = "lab"
    theme: str = "light"
    strip_sources: bool = True
    show_tracebacks: bool = False
    allow_errors: bool = False
    cell_timeout: float | None = None

    @classmethod
    def from_settings(cls, section: Mapping[str, Any]) -> RenderOptions:
        names = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in section.items() if key in names})

    def with_template_settings(self, conf: Mapping[str, Any], explicit: set[str], where: str) -> RenderOptions:
        """Apply a template's ``settings`` for the keys nobody set explicitly; bad ones are errors."""
        changes: dict[str, Any] = {}
        for key, value in conf.items():
            if key not in TEMPLATE_SETTINGS:
                raise ConfigError(f"{where}: settings.{key} cannot be set by a template; "
                                  f"expected one of {', '.join(TEMPLATE_SETTINGS)}")
            spec = {s.name: s for s in declared()}[key]
            value = spec.coerce(value, where, f"settings.{key}")
            if key not in explicit:
                changes[key] = value
        return replace(self, **changes) if changes else self


def compile_patterns(patterns: list[Any], key: str) -> list[re.Pattern[str]]:
    """The regular expressions of an allow/deny list; a bad one is a ConfigError naming it."""
    compiled = []
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise ConfigError(f"dashboards.{key}: {pattern!r} is not a string")
        try:
            compiled.append(re.compile(pattern, re.IGNORECASE))
        except re.error as exc:
            raise ConfigError(f"dashboards.{key}: {pattern!r} is not a valid regular expression: {exc}") from None
    return compiled


def theme_name(value: str) -> str | None:
    """``light``/``dark`` for a theme as Voila accepts it (``dark``, ``JupyterLab Dark``); None if unknown."""
    name = value.strip().lower().removeprefix("jupyterlab ").strip()
    return name if name in THEMES else None


def pick(policy: str, configured: str, from_notebook: str | None, from_query: str | None) -> tuple[str, bool]:
    """The template (or theme) a page uses, as Voila chooses it: the query's, else the notebook
    metadata's, else the configured one, as far as ``policy`` (YES, NOTEBOOK, NO) allows. Also
    whether the visitor picked it."""
    if policy == "YES" and from_query:
        return from_query, True
    if policy in ("YES", "NOTEBOOK") and from_notebook:
        return from_notebook, False
    return configured, False


def script_mapping(value: Mapping[str, Any], single: str) -> dict[str, str]:
    """The checked ``extension_language_mapping`` (extensions lower-cased, with their dot); a
    single app-mode notebook that is a ``.py`` maps ``.py`` to Python when nobody mapped it."""
    mapping: dict[str, str] = {}
    for extension, language in value.items():
        if not (isinstance(extension, str) and extension.startswith(".") and len(extension) > 1
                and isinstance(language, str) and language):
            raise ConfigError(f"dashboards.extension_language_mapping: {extension!r}: {language!r} is not "
                              "'.extension': 'language'")
        if extension.lower() == ".ipynb":
            raise ConfigError("dashboards.extension_language_mapping: .ipynb files are notebooks already")
        mapping[extension.lower()] = language
    if single.lower().endswith(".py"):
        mapping.setdefault(".py", "python")
    return mapping
