"""carme-lab's hook implementations: settings, routes, public paths and the lab service."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from starlette.routing import BaseRoute, Mount

from carme.config import Setting
from carme.hooks import hookimpl

from . import hookspecs
from .api import api_routes
from .config_api import ConfigSections, config_routes
from .manager import Manager, manager_routes
from .page import not_found_route, page_routes
from .paths import LabPaths
from .service import LabService
from .static import CachedStaticFiles, LabextensionFiles, LabStatic

if TYPE_CHECKING:
    from carme.server import Server

FAVICONS = Path(__file__).parent / "favicons"
# carme's own labextension (labextensions/jupyterlab, built here by the wheel build and ./dev;
# never committed): loaded like a pip-installed one, after those other carme extensions ship.
OWN_LABEXTENSIONS = Path(__file__).parent / "labextensions"


@hookimpl
def carme_register_hookspecs() -> list[object]:
    return [hookspecs]


@hookimpl
def carme_register_settings() -> list[Setting]:
    return [
        Setting("app_dir", str, None, "Folder of the built JupyterLab frontend (default: share/jupyter/lab "
                "on the Jupyter data path, installed by jupyterlab-js)", nullable=True),
        Setting("user_settings_dir", str, None, "Where user settings are saved (default: "
                "<jupyter config dir>/lab/user-settings, shared with JupyterLab)", nullable=True),
        Setting("workspaces_dir", str, None, "Where workspaces are saved (default: "
                "<jupyter config dir>/lab/workspaces, shared with JupyterLab)", nullable=True),
        Setting("extra_labextensions_path", list, [], "More folders of prebuilt labextensions, searched first"),
        Setting("disabled_extensions", list, [], "Lab plugins or extensions to disable, by name"),
        Setting("placeholders", list, ["lsp", "nbconvert"], "APIs of other Jupyter server extensions that "
                "JupyterLab asks for, answered 'none available' (lsp: /lsp/status, nbconvert: /api/nbconvert); "
                "drop one when an extension serves it"),
        Setting("page_config", dict, {}, "Extra JupyterLab page config keys (merged over carme's)"),
    ]


@hookimpl
def carme_register_routes(server: Server) -> list[BaseRoute]:
    return [
        *page_routes(server),
        *api_routes(server.settings["lab.placeholders"]),
        *config_routes(),
        *manager_routes(),
        Mount("/static/lab", LabStatic(lambda service: service.static_files)),
        Mount("/lab/api/themes", LabStatic(lambda service: service.themes_files)),
        Mount("/lab/extensions", LabextensionFiles()),
        Mount("/static/favicons", CachedStaticFiles([FAVICONS], follow_symlink=False)),
        not_found_route(),  # last: every other /lab/... route above wins
    ]


@hookimpl
def carme_register_public_paths(server: Server) -> list[str]:
    # Static files only: the frontend bundle, labextensions and themes hold no user data
    # (jupyter_server serves them without authentication too).
    return ["/static/lab/", "/static/favicons/", "/lab/extensions/", "/lab/api/themes/"]


@hookimpl
def carme_register_api_paths(server: Server) -> list[str]:
    # Settings, workspaces, translations...: a client without credentials gets 403, not the login page.
    return ["/lab/api/"]


@hookimpl
async def carme_startup(server: Server) -> None:
    dirs: list[Path] = []
    for _name, paths in server.plugins.each("carme_lab_register_labextension_paths", server=server):
        dirs.extend(Path(p) for p in paths)
    dirs.append(OWN_LABEXTENSIONS)
    service = LabService(server, LabPaths.from_settings(server.settings.section("lab")), extension_dirs=dirs)
    await service.refresh()
    server.services["lab"] = service
    server.services["lab.config"] = ConfigSections()
    server.services["lab.manager"] = Manager(service)
