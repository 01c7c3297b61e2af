"""DashboardsService: everything the dashboards extension runs for one app, made at start-up and
published as ``server.services["dashboards"]`` (the routes find it there)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carme import __version__ as carme_version
from carme.config import ConfigError
from carme.errors import ApiError
from carme.plugins import await_maybe

from .client import ClientMissingError, check_client
from .files import FileRules
from .forks import ForkServers
from .labextensions import Labextensions
from .notebooks import load_notebook
from .page import PageRenderer
from .runner import VisitRunner
from .settings import GUARDED_SETTINGS, THEMES, RenderOptions, pick, script_mapping, theme_name
from .templates import BrokenTemplate, Template, Templates, search_path
from .visits import VisitRegistry

if TYPE_CHECKING:
    from nbformat import NotebookNode
    from starlette.requests import Request

    from carme.server import Server

log = logging.getLogger("carme.dashboards")

SECTION = "dashboards"
STATIC_DIR = Path(__file__).parent / "static"


class DashboardsService:
    """Templates, visits, file rules and labextensions of one app."""

    def __init__(self, server: Server) -> None:
        self.server = server
        section = server.settings.section(SECTION)
        self.section: Mapping[str, Any] = section
        self.templates = Templates(search_path(section["template_paths"]))
        explicit = {key for key in section if server.settings.source(f"{SECTION}.{key}") != "default"}
        self._explicit = explicit
        # A missing template or a loop stops start-up here.
        self.options = self._options_of(self.templates.chain(section["template"]))
        self._picked: dict[tuple[str, bool], RenderOptions] = {}  # other templates, as pages picked them
        self.pages = PageRenderer(self.templates)
        self.scripts = script_mapping(section["extension_language_mapping"],
                                      str(section["notebook"]) if section["app_mode"] else "")
        self.files = FileRules(section["file_allowlist"], section["file_denylist"], tuple(self.scripts))
        self.labextensions = Labextensions(section["extra_labextensions_path"], section["labextensions_denylist"])
        self.visits = VisitRegistry(server, section)
        self.visits.runner = VisitRunner(server, self.visits).start
        self.forks = ForkServers(server.root_dir, section["max_fork_servers"]) if section["fork_kernels"] else None
        self.app_mode: bool = bool(section["app_mode"])
        self.notebook: str = str(section["notebook"]).strip("/")
        self.header_envs: list[str] = [str(h) for h in section["http_header_envs"]]
        self.version = carme_version
        if self.notebook and not self.app_mode:
            raise ConfigError("dashboards.notebook is for app mode (`carme dashboard NOTEBOOK`); "
                              "set dashboards.app_mode too, or leave it empty")

    async def start(self) -> None:
        try:
            check_client()
        except ClientMissingError as exc:
            log.warning("%s; dashboard pages will render without widgets or math", exc)
        await asyncio.to_thread(self.labextensions.scan)
        await asyncio.to_thread(self.pages.compile, self.options.template)  # not on the first visitor's time
        log.info("dashboards: template %r (%s), %d labextensions for widgets", self.options.template,
                 self.options.theme, len(self.labextensions.found))
        if self.forks is not None:
            self.visits.provisioner = self.forks.choose
            await self._warm_forks()
        preheat = list(self.section["pool_notebooks"])
        if self.app_mode and self.notebook and self.notebook not in preheat and self.visits.pool_size > 0:
            preheat.append(self.notebook)
        for path in preheat:
            try:
                notebook = await load_notebook(self.server, str(path).strip("/"), self.section["kernel_name"],
                                               self.scripts)
            except Exception as exc:
                raise ConfigError(f"dashboards.pool_notebooks: cannot load {path!r}: {exc}") from None
            self.visits.preheat(notebook)

    def _options_of(self, chain: list[Template]) -> RenderOptions:
        options = RenderOptions.from_settings(self.section)
        for template in reversed(chain):  # the base's settings first, the template's own win
            options = options.with_template_settings(template.settings, self._explicit,
                                                     str(template.path / "conf.json"))
        return options

    async def page_options(self, notebook: NotebookNode, query: Mapping[str, str]) -> RenderOptions:
        """The options of one dashboard page: the configured template and theme, or the ones the
        notebook's metadata (``voila.template``, ``voila.theme``) or the visitor's query
        (``voila-template``, ``voila-theme``) pick, as the ``allow_*_override`` settings allow.
        ApiError 400 naming an unknown template or theme."""
        wanted = (notebook.get("metadata", {}) or {}).get("voila") or {}
        wanted = wanted if isinstance(wanted, dict) else {}
        section = self.section
        template, by_visitor = pick(section["allow_template_override"], self.options.template,
                                    _text(wanted.get("template")), query.get("voila-template"))
        theme, _ = pick(section["allow_theme_override"], self.options.theme, _text(wanted.get("theme")),
                        query.get("voila-theme"))
        options = self.options if template == self.options.template else await self._picked_options(template,
                                                                                                     by_visitor)
        if theme != self.options.theme:
            name = theme_name(theme)
            if name is None:
                raise ApiError(400, f"unknown theme {theme!r}: expected one of {', '.join(THEMES)}", "Bad Request")
            options = replace(options, theme=name)
        return options

    async def _picked_options(self, template: str, by_visitor: bool) -> RenderOptions:
        options = self._picked.get((template, by_visitor))
        if options is not None:
            return options
        try:
            chain = await asyncio.to_thread(self.templates.chain, template)
            await asyncio.to_thread(self.pages.compile, template)
            options = replace(self._options_of(chain), template=template)
        except BrokenTemplate as exc:  # installed but unusable: the admin's to fix, not the visitor's
            log.error("%s", exc)
            raise ApiError(500, f"The dashboard template {template!r} is broken: {exc.problem}. "
                           "The server's administrator can fix it; see the server log.", "Broken Template") from None
        except ConfigError:
            names = await asyncio.to_thread(self.templates.available)
            raise ApiError(400, f"unknown template {template!r}: expected one of {', '.join(names)}",
                           "Bad Request") from None
        if by_visitor:  # a visitor's pick changes the look, never what the page reveals or how it runs
            options = replace(options, **{key: getattr(self.options, key) for key in GUARDED_SETTINGS})
        self._picked[(template, by_visitor)] = options
        return options

    async def before_launch(self, request: Request, path: str, notebook: NotebookNode, env: dict[str, str]) -> None:
        """Let each extension change a new visit's notebook and environment, or refuse it
        (``carme_dashboards_before_launch``; an ApiError it raises passes on as it is)."""
        await self._each("carme_dashboards_before_launch", request=request, path=path, notebook=notebook, env=env)

    async def extended_page_config(self, request: Request, path: str, config: dict[str, Any]) -> dict[str, Any]:
        """The page config with what extensions add (``carme_dashboards_extra_page_config``)."""
        for extra in await self._each("carme_dashboards_extra_page_config", request=request, path=path,
                                      page_config=config):
            if extra:
                config.update(extra)
        return config

    async def _each(self, hook: str, **kwargs: Any) -> list[Any]:
        """Call ``hook`` on each plugin in registration order, awaiting what needs it; the
        answers. An ApiError propagates; another failure is an ApiError 500 naming the plugin."""
        plugins = self.server.plugins
        answers = []
        for name in plugins.implementers(hook):
            try:
                answers.append(await await_maybe(plugins.call(name, hook, server=self.server, **kwargs)))
            except ApiError:
                raise
            except Exception as exc:
                log.exception("plugin %s failed in %s", name, hook)
                raise ApiError(500, f"a server plugin failed ({name}); see the server log",
                               "Internal Server Error") from exc
        return answers

    async def _warm_forks(self) -> None:
        """In app mode, start the fork server of the kernels its visitors will need now, so the
        first visitor does not wait for it (elsewhere a server starts on first use)."""
        assert self.forks is not None
        if not self.app_mode:
            return
        name = self.section["kernel_name"]
        if self.notebook and name is None:
            try:
                name = (await load_notebook(self.server, self.notebook, None, self.scripts)).kernel_name
            except Exception:
                return  # the notebook's page will say what is wrong with it
        name = name or self.server.settings["default_kernel_name"]
        try:
            spec = await asyncio.to_thread(self.server.kernels.specs.get, name)
        except Exception:
            return
        self.forks.warm(spec, bool(self.server.settings["ipykernel_no_drop"]))

    async def stop(self) -> None:
        await self.visits.close()
        if self.forks is not None:
            await self.forks.close()

    def serves(self, path: str) -> bool:
        """Whether ``path`` may be rendered: any notebook, but in single-notebook app mode only that one."""
        return not (self.app_mode and self.notebook) or path == self.notebook


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
