"""The JupyterLab page: page config built per request, index.html rendered, and the redirects.

URLs in the page config are absolute paths that start with this app's prefix: the mount prefix
of a host app (``root_path``) plus carme's base URL. The auth token is never written into the
page: the browser is authenticated by the login cookie set on the first token-authenticated
request, and JupyterLab sends the ``_xsrf`` cookie (which carme's auth middleware sets) back as
``X-XSRFToken`` on every unsafe request, so a page saved, cached or read by a script carries no secret.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from carme.api.permissions import authenticated, authorized
from carme.api.server import API_VERSION
from carme.auth import base_path
from carme.errors import ApiError
from carme.kernels.message import UNTRACKED_MESSAGE_TYPES
from carme.plugins import await_maybe

from .manager import METADATA as MANAGER_METADATA

if TYPE_CHECKING:
    from carme.server import Server

    from .service import LabService

APP_URL = "/lab"
_URLS = {
    "app": "lab", "static": "static/lab", "labextensions": "lab/extensions", "settings": "lab/api/settings",
    "workspacesApi": "lab/api/workspaces", "translationsApi": "lab/api/translations", "themes": "lab/api/themes",
    "listings": "lab/api/listings", "licenses": "lab/api/licenses", "tree": "lab/tree",
}


def _service(request: Request) -> LabService:
    return request.app.state.server.services["lab"]  # type: ignore[no-any-return]


def running_extensions(server: Server) -> list[str]:
    """The carme extensions loaded in this server, by name."""
    return sorted(name for name in server.plugins.extensions if server.plugins.runs(name))


def build_page_config(service: LabService, base: str, *, mode: str, workspace: str, tree_path: str) -> dict[str, Any]:
    """The page config JupyterLab reads from ``#jupyter-config-data``, for prefix ``base``."""
    server = service.server
    config: dict[str, Any] = {
        "appName": "JupyterLab",
        "appNamespace": "lab",
        "appVersion": service.app_version,
        "baseUrl": base,
        "wsUrl": "",
        "token": "",
        "notebookVersion": str([int(p) for p in API_VERSION.split(".")]),
        "terminalsAvailable": False,
        "serverRoot": str(server.root_dir),
        "rootUri": server.root_dir.as_uri(),
        "virtualDocumentsUri": server.root_dir.as_uri() + "/.virtual_documents",
        "preferredPath": "/",
        "store_id": service.page_count,
        "mode": mode,
        "workspace": workspace,
        "treePath": tree_path,
        "federated_extensions": [ext.page_entry() for ext in service.extensions.values()],
        "disabledExtensions": list(service.states.disabled),
        "deferredExtensions": list(service.states.deferred),
        "lockedExtensions": list(service.states.locked),
        "buildAvailable": False,
        "buildCheck": False,
        "devMode": False,
        "cacheFiles": True,
        "quitButton": True,
        "exposeAppInBrowser": False,
        "copyAbsolutePath": False,
        "notebookStartsKernel": True,
        "allow_hidden_files": bool(server.settings.get("allow_hidden", False)),
        "delete_to_trash": bool(server.settings.get("delete_to_trash", False)),
        "untracked_message_types": list(UNTRACKED_MESSAGE_TYPES),
        "extensionManager": dict(MANAGER_METADATA),
        # carme's labextension turns each of its features off when the server extension it needs
        # does not run.
        "carmeExtensions": running_extensions(server),
    }
    for key, path in _URLS.items():
        config[key + "Url"] = "/" + path
        config["full" + key[0].upper() + key[1:] + "Url"] = base + path
    config.update(service.directories())
    config.update(server.settings.section("lab").get("page_config") or {})
    return config


async def extended_page_config(server: Server, request: Request, config: dict[str, Any]) -> dict[str, Any]:
    """Let every extension add to the page config (``carme_lab_extra_page_config``), in registration order."""
    for _name, result in server.plugins.each("carme_lab_extra_page_config", server=server, request=request,
                                             page_config=config):
        extra = await await_maybe(result)
        if extra:
            config.update(extra)
    return config


async def _render(request: Request, mode: str, tree_path: str, extra: dict[str, Any] | None = None,
                  status: int = 200) -> Response:
    service = _service(request)
    await service.refresh()
    service.page_count += 1
    base = base_path(request.scope)
    config = build_page_config(service, base, mode=mode, workspace=request.path_params.get("workspace", "default"),
                               tree_path=tree_path)
    config.update(extra or {})
    config = await extended_page_config(service.server, request, config)
    html = service.template().render(page_config=config, base_url=base, ws_url="", custom_css=False)
    # The auth middleware sets the _xsrf cookie JupyterLab reads for every authenticated client.
    return HTMLResponse(html, status_code=status, headers={"cache-control": "no-store"})


def _page(mode: str) -> Any:
    @authorized("read", "lab")
    async def endpoint(request: Request) -> Response:
        return await _render(request, mode, request.path_params.get("path", ""))

    return endpoint


@authorized("read", "lab")
async def _not_found(request: Request) -> Response:
    """Any other /lab/... page: JupyterLab's own not-found page (its page with ``notFoundUrl``,
    answered 404, as jupyterlab_server does); an unknown /lab/api/... stays a JSON 404."""
    path = request.path_params["path"]
    if not path:  # /lab/ is /lab (what the router answered before this fallback existed)
        return RedirectResponse(str(request.url.replace(path=request.url.path.rstrip("/"))), status_code=307)
    if path.startswith("api/"):
        raise ApiError(404, f"Not found: {request.url.path}", "not found")
    return await _render(request, "multiple-document", "", {"notFoundUrl": request.url.path}, status=404)


def not_found_route() -> BaseRoute:
    """The fallback for unknown /lab/... paths: register it after every other /lab route."""
    return Route("/lab/{path:path}", _not_found, methods=["GET"])


def _redirect(target: str) -> Any:
    @authenticated  # the target checks
    async def endpoint(request: Request) -> Response:
        path = request.path_params.get("path", "")
        url = base_path(request.scope) + target.lstrip("/") + ("/" + quote(path) if path else "")
        query = request.url.query
        return RedirectResponse(url + ("?" + query if query else ""), status_code=302)

    return endpoint


def page_routes(server: Server) -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for prefix, mode in (("lab", "multiple-document"), ("doc", "single-document")):
        endpoint = _page(mode)
        for path in ("", "/tree/{path:path}", "/workspaces/{workspace}", "/workspaces/{workspace}/tree/{path:path}"):
            routes.append(Route(f"/{prefix}{path}", endpoint, methods=["GET"]))
    default_url = server.settings["default_url"]
    routes += [
        Route("/", _redirect(default_url), methods=["GET"]),
        Route("/tree", _redirect(APP_URL + "/tree"), methods=["GET"]),
        Route("/tree/{path:path}", _redirect(APP_URL + "/tree"), methods=["GET"]),
    ]
    return routes


def make_template_environment(static_dir: str) -> jinja2.Environment:
    """Jinja2 over JupyterLab's built ``index.html`` (it is a template)."""
    return jinja2.Environment(loader=jinja2.FileSystemLoader(static_dir), autoescape=True)
