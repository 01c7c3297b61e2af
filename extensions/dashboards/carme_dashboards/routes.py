"""HTTP and websocket routes of the dashboards extension: thin handlers over the service.

- ``dashboards/render/PATH``: the dashboard page of a notebook, streamed (busy page 503 when
  every kernel is taken, error page 404/400 for a missing or broken notebook);
- ``dashboards/tree/PATH`` (and ``dashboards/``): the notebooks of a folder;
- ``dashboards/files/PATH``: files next to the notebooks, through the allow/deny lists;
- ``dashboards/api/kernels/ID`` and ``.../channels``: the visit's own kernel, for its page only;
- ``dashboards/static/``, ``dashboards/templates/NAME/static/``, ``dashboards/labextensions/``:
  the page client, template assets and widget libraries (public: no user data);
- in app mode, ``/``: the one notebook, or the tree of the root.

Permissions: a dashboard (its page, its kernel's model and websocket) needs ``execute`` on
``dashboards`` (running dashboards, which is not running code of one's own: a viewer may have
it without ``execute`` on ``kernels``); the tree and files need ``read`` on ``dashboards``; and
every page needs ``read`` on the ``contents`` it shows.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from starlette.requests import HTTPConnection, Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from carme.api.permissions import authorized
from carme.auth import base_path
from carme.contents.paths import normalize
from carme.errors import ApiError, refuse_websocket
from carme.jsonutil import JSONResponse, isoformat, utcnow
from carme.kernels.policy import MessagePolicy

from .client import SCRIPT, STYLE, THEMES
from .files import file_response
from .notebooks import is_notebook_path, load_notebook, script_language
from .page import script_json
from .service import STATIC_DIR, DashboardsService
from .settings import RenderOptions
from .slots import Busy
from .visits import Visit, VisitKey

if TYPE_CHECKING:
    from carme.server import Server

COOKIE_PREFIX = "carme-dashboards-"
_BROWSER_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
NO_STORE = {"Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache", "Expires": "0",
            "X-Accel-Buffering": "no"}  # nginx: pass each cell on as it comes


def service_of(conn: HTTPConnection | Scope) -> DashboardsService:
    scope = conn.scope if isinstance(conn, HTTPConnection) else conn
    server: Server = scope["app"].state.server
    service = server.services.get("dashboards")
    if service is None:
        raise ApiError(503, "the dashboards extension has not started", "Service Unavailable")
    return service  # type: ignore[no-any-return]


# -- the visit cookie ---------------------------------------------------------------------------


def cookie_name(conn: HTTPConnection) -> str:
    """Per host and port: two servers on one host must not overwrite each other's visits."""
    return COOKIE_PREFIX + re.sub(r"[^A-Za-z0-9]", "-", conn.headers.get("host", ""))


def browser_of(conn: HTTPConnection) -> str | None:
    value = conn.cookies.get(cookie_name(conn))
    return value if value and _BROWSER_ID.match(value) else None


def request_environ(request: Request, header_envs: list[str]) -> dict[str, str]:
    """The request as Voila puts it in the kernel's environment (CGI names, RFC 3875)."""
    host = urlsplit("//" + request.headers.get("host", ""))
    env = {
        "SCRIPT_NAME": request.url.path,
        "PATH_INFO": "",
        "QUERY_STRING": request.scope.get("query_string", b"").decode("latin-1"),
        "SERVER_SOFTWARE": f"carme-dashboards/{service_of(request).version}",
        "SERVER_PROTOCOL": "HTTP/" + str(request.scope.get("http_version", "1.1")),
        "SERVER_NAME": host.hostname or "",
        "SERVER_PORT": str(host.port or ""),
    }
    wanted = {name.lower() for name in header_envs}
    for name, value in request.headers.items():
        if name.lower() in wanted:
            env["HTTP_" + name.upper().replace("-", "_")] = value
    return env


# -- pages ----------------------------------------------------------------------------------------


def _common(service: DashboardsService, base: str, options: RenderOptions | None = None) -> dict[str, Any]:
    """What every page gets: the theme, the version and the client's files."""
    theme = (options or service.options).theme
    client = base + "dashboards/static/client/"
    return {"theme": theme, "version": service.version, "client_js": client + SCRIPT,
            "client_css": client + STYLE, "theme_css": client + THEMES[theme]}


async def error_page(request: Request, status: int, message: str, reason: str) -> HTMLResponse:
    service = service_of(request)
    base = base_path(request.scope)
    context = {**_common(service, base), "status": status, "reason": reason, "message": message}
    body = await service.pages.render(service.options.template, "error.html", base, context)
    return HTMLResponse(body, status_code=status)


async def dashboard(request: Request, path: str) -> Response:
    """The dashboard page of the notebook at ``path``, streamed as its visit runs."""
    service = service_of(request)
    base = base_path(request.scope)
    if not is_notebook_path(path, service.scripts):
        if await service.server.contents.dir_exists(path) and not service.notebook:
            return RedirectResponse(base + "dashboards/tree/" + quote(path), status_code=302)
        return RedirectResponse(base + "dashboards/files/" + quote(path), status_code=302)
    if not service.serves(path):
        return await error_page(request, 404, f"No dashboard {path}", "Not Found")
    try:
        notebook = await load_notebook(service.server, path, service.section["kernel_name"], service.scripts)
    except ApiError as exc:
        return await error_page(request, exc.status, exc.message, exc.reason or "Error")
    try:
        options = await service.page_options(notebook.notebook, request.query_params)
    except ApiError as exc:
        return await error_page(request, exc.status, exc.message, exc.reason or "Error")
    browser = browser_of(request)
    new_browser = browser is None
    browser = browser or secrets.token_urlsafe(24)
    key = VisitKey(browser, path, request.scope.get("query_string", b"").decode("latin-1"))
    env = request_environ(request, service.header_envs)

    async def begin() -> Visit:  # a new visit: extensions may change what it runs, or refuse it
        await service.before_launch(request, path, notebook.notebook, env)
        return service.visits.open(key, notebook, env, options, base)

    try:
        visit, made_here = await service.visits.launch(key, begin)
    except ApiError as exc:
        return await error_page(request, exc.status, exc.message, exc.reason or "Error")
    except Busy:
        body = await service.pages.render(options.template, "busy.html", base,
                                          {**_common(service, base, options), "title": _title(path)})
        return HTMLResponse(body, status_code=503, headers={"Retry-After": "30", **NO_STORE})
    options = visit.options  # a reload shows what the visit ran with
    context = {
        **_common(service, base, options),
        "title": _title(path),
        "notebook_path": path,
        "kernel_id": visit.kernel_id,
        "cell_count": len(visit.notebook.notebook.cells),
        "strip_sources": options.strip_sources,
    }
    try:
        config = await service.extended_page_config(request, path, page_config(service, base, visit, options))
    except ApiError as exc:
        if made_here:  # a reload's failure leaves the visit to the page that has it
            await service.visits.end(visit, "its page could not be made")
        return await error_page(request, exc.status, exc.message, exc.reason or "Error")
    context["page_config"] = script_json(config)

    async def body() -> Any:
        service.visits.page_opened(visit)
        try:
            async for chunk in service.pages.stream(options.template, base, context, visit.log):
                yield chunk
        finally:
            service.visits.page_closed(visit)

    response = StreamingResponse(body(), media_type="text/html; charset=utf-8", headers=NO_STORE)
    if new_browser:
        response.set_cookie(cookie_name(request), browser, path=base, httponly=True, samesite="lax")
    return response


def page_config(service: DashboardsService, base: str, visit: Visit, options: RenderOptions) -> dict[str, Any]:
    """The page's ``jupyter-config-data`` (JupyterLab PageConfig keys; see CONTRACT.md)."""
    return {
        "appName": "carme dashboards",
        "appVersion": service.version,
        "baseUrl": base,
        "wsUrl": "",
        "kernelId": visit.kernel_id,
        "kernelApiUrl": "dashboards/api/",
        "fullLabextensionsUrl": base + "dashboards/labextensions",
        "federated_extensions": service.labextensions.page_entries(),
        "theme": options.theme,
        "notebookPath": visit.key.path,
    }


def _title(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name


@authorized("execute", "dashboards")
@authorized("read", "contents", path="path")
async def render(request: Request) -> Response:
    return await dashboard(request, normalize(request.path_params["path"]))


@authorized("read", "dashboards")
@authorized("read", "contents", path="path")
async def tree(request: Request) -> Response:
    service = service_of(request)
    if service.app_mode and service.notebook:
        return await error_page(request, 404, "This server runs one dashboard only.", "Not Found")
    path = normalize(request.path_params.get("path", ""))
    return await tree_page(request, path)


async def tree_page(request: Request, path: str) -> Response:
    """The notebooks and folders of ``path`` (through the contents manager: hidden ones are not listed)."""
    service = service_of(request)
    base = base_path(request.scope)
    try:
        model = await service.server.contents.get(path, content=True, type="directory")
    except ApiError as exc:
        return await error_page(request, exc.status, exc.message, exc.reason or "Error")
    entries = []
    for child in sorted(model["content"], key=lambda c: (c["type"] != "directory", c["name"].lower())):
        if child["type"] == "directory":
            entries.append({"name": child["name"], "type": "directory",
                            "url": base + "dashboards/tree/" + quote(child["path"])})
        elif child["type"] == "notebook" or script_language(child["path"], service.scripts):
            entries.append({"name": child["name"], "type": "notebook",
                            "url": base + "dashboards/render/" + quote(child["path"])})
    crumbs = [{"name": "Dashboards", "url": base + ("" if service.app_mode else "dashboards/tree/")}]
    parts = [p for p in path.split("/") if p]
    for i, part in enumerate(parts):
        crumbs.append({"name": part, "url": base + "dashboards/tree/" + quote("/".join(parts[: i + 1]))})
    body = await service.pages.render(service.options.template, "tree.html", base,
                                      {**_common(service, base), "title": path or "Dashboards", "path": path,
                                       "entries": entries, "breadcrumbs": crumbs})
    return HTMLResponse(body, headers={"Cache-Control": "no-cache"})


@authorized("execute", "dashboards")
@authorized("read", "contents")
async def app_root(request: Request) -> Response:
    """``/`` in app mode: the one notebook, or the tree of the root."""
    service = service_of(request)
    if service.notebook:
        return await dashboard(request, service.notebook)
    return await tree_page(request, "")


@authorized("read", "dashboards")
@authorized("read", "contents", path="path")
async def files(request: Request) -> Response:
    service = service_of(request)
    return await file_response(service.server, service.files, normalize(request.path_params["path"]))


async def template_static(request: Request) -> Response:
    service = service_of(request)
    name, relative = request.path_params["name"], request.path_params["path"]
    found = await asyncio.to_thread(service.templates.static_file, name, relative)
    if found is None:
        raise ApiError(404, f"no static file {relative!r} in template {name!r}", "Not Found")
    return FileResponse(found, headers={"Cache-Control": "no-cache"})


async def labextension_file(request: Request) -> Response:
    return await service_of(request).labextensions.response(request.path_params["path"])


# -- the visit's kernel ---------------------------------------------------------------------------


def _visit_of(conn: HTTPConnection, kernel_id: str) -> Visit | None:
    browser = browser_of(conn)
    return service_of(conn).visits.for_kernel(kernel_id, browser) if browser else None


@authorized("execute", "dashboards")
async def kernel_model(request: Request) -> Response:
    """The model of the visit's kernel (``starting`` until it is up); 404 for any other kernel."""
    kernel_id = request.path_params["kernel_id"]
    visit = _visit_of(request, kernel_id)
    if visit is None:
        raise ApiError(404, f"Kernel does not exist: {kernel_id}", "Not Found")
    if visit.kernel is not None:
        return JSONResponse(visit.kernel.model())
    return JSONResponse({"id": visit.kernel_id, "name": visit.notebook.kernel_name, "connections": 0,
                         "last_activity": isoformat(utcnow()), "execution_state": "starting"})


class VisitorSocket:
    """``dashboards/api/kernels/ID/channels``: the core's kernel websocket, for the visit's own
    kernel only, under the visitor message policy (comms, kernel_info and input replies in;
    nothing with source out). Waits for the kernel to be up before the handshake completes."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        conn = HTTPConnection(scope)
        kernel_id = scope["path_params"]["kernel_id"]
        service = service_of(scope)
        visit = _visit_of(conn, kernel_id)
        if visit is None:
            await receive()
            await refuse_websocket(scope, send, 404, f"Kernel does not exist: {kernel_id}")
            return
        service.visits.socket_opened(visit)
        try:
            await visit.ready.wait()
            if visit.kernel is None or visit.error is not None:
                await receive()
                await refuse_websocket(scope, send, 503,
                                       f"Kernel {kernel_id} is not available: {visit.error or 'not started'}")
                return
            policy = MessagePolicy.restricted(
                f"dashboard visitor of kernel {kernel_id}", private_sessions={visit.executor_session},
                # tracebacks quote source lines: a visitor sees none unless the settings show them
                hide=() if visit.options.show_tracebacks else ("error",),
                hide_streams=() if visit.options.show_tracebacks else ("stderr",),
                # the executor keeps the main shell busy during the run: the page must not wait on it
                kernel_info=visit.kernel.kernel_info or None)
            await service.server.kernel_websockets.serve(scope, receive, send, kernel_id, policy)
        finally:
            service.visits.socket_closed(visit)


# -- the route list -------------------------------------------------------------------------------


PUBLIC_PATHS = ["/dashboards/static/", "/dashboards/templates/", "/dashboards/labextensions/"]
API_PATHS = ["/dashboards/api/", "/dashboards/files/"]


def routes(app_mode: bool) -> list[BaseRoute]:
    listed: list[BaseRoute] = [
        Route("/dashboards", tree, methods=["GET"]),
        Route("/dashboards/", tree, methods=["GET"]),
        Route("/dashboards/tree", tree, methods=["GET"]),
        Route("/dashboards/tree/{path:path}", tree, methods=["GET"]),
        Route("/dashboards/render/{path:path}", render, methods=["GET"]),
        Route("/dashboards/files/{path:path}", files, methods=["GET", "HEAD"]),
        Route("/dashboards/api/kernels/{kernel_id}", kernel_model, methods=["GET"]),
        WebSocketRoute("/dashboards/api/kernels/{kernel_id}/channels",
                       authorized("execute", "dashboards")(VisitorSocket())),
        Route("/dashboards/templates/{name}/static/{path:path}", template_static, methods=["GET", "HEAD"]),
        Route("/dashboards/labextensions/{path:path}", labextension_file, methods=["GET", "HEAD"]),
        Mount("/dashboards/static", StaticFiles(directory=STATIC_DIR, check_dir=False)),
    ]
    if app_mode:
        listed.insert(0, Route("/", app_root, methods=["GET"]))
    return listed
