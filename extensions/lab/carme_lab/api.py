"""The /lab/api routes: settings, workspaces, translations, listings, build, news, licenses.

Thin handlers: parse, call the lab service's stores in a worker thread (they touch the disk),
shape the reply as jupyterlab_server does.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from carme.api.permissions import authorized
from carme.api.util import json_body, json_object
from carme.config import ConfigError
from carme.errors import ApiError
from carme.jsonutil import JSONResponse

if TYPE_CHECKING:
    from .service import LabService

EMPTY_LISTINGS = {"blocked_extensions_uris": [], "allowed_extensions_uris": [], "blocked_extensions": [],
                  "allowed_extensions": []}
LANGUAGES = {"en": {"displayName": "English", "nativeName": "English"}}


def _service(request: Request) -> LabService:
    return request.app.state.server.services["lab"]  # type: ignore[no-any-return]


# -- settings -------------------------------------------------------------------------------------


@authorized("read", "lab")
async def settings_list(request: Request) -> Response:
    ids_only = request.query_params.get("ids_only", "") == "true"
    entries = await asyncio.to_thread(_service(request).settings.list, ids_only)
    return JSONResponse({"settings": entries})


@authorized("read", "lab")
async def settings_get(request: Request) -> Response:
    entry = await asyncio.to_thread(_service(request).settings.get, request.path_params["plugin"])
    return JSONResponse(entry)


@authorized("write", "lab")
async def settings_put(request: Request) -> Response:
    body = await json_object(request)
    assert body is not None
    if "raw" not in body:
        raise ApiError(400, "settings body must have a 'raw' field with the JSON5 text of the settings", "Bad Request")
    await asyncio.to_thread(_service(request).settings.put, request.path_params["plugin"], body["raw"])
    return Response(status_code=204)


# -- workspaces -----------------------------------------------------------------------------------


@authorized("read", "lab")
async def workspaces_list(request: Request) -> Response:
    return JSONResponse({"workspaces": await asyncio.to_thread(_service(request).workspaces.list)})


@authorized("read", "lab")
async def workspace_get(request: Request) -> Response:
    return JSONResponse(await asyncio.to_thread(_service(request).workspaces.get, request.path_params["name"]))


@authorized("write", "lab")
async def workspace_put(request: Request) -> Response:
    body = await json_body(request)
    await asyncio.to_thread(_service(request).workspaces.put, request.path_params["name"], body)
    return Response(status_code=204)


@authorized("write", "lab")
async def workspace_delete(request: Request) -> Response:
    await asyncio.to_thread(_service(request).workspaces.delete, request.path_params["name"])
    return Response(status_code=204)


# -- translations, listings, build ------------------------------------------------------------------


@authorized("read", "lab")
async def translations_list(request: Request) -> Response:
    return JSONResponse({"data": LANGUAGES, "message": ""})


@authorized("read", "lab")
async def translations_get(request: Request) -> Response:
    locale = request.path_params["locale"]
    if locale == "default" or locale.split("_")[0].split("-")[0] == "en":
        return JSONResponse({"data": {}, "message": ""})
    # JupyterLab answers 200 with a message, and falls back to English.
    return JSONResponse({"data": {}, "message": f"Language pack '{locale}' not installed!"})


@authorized("read", "lab")
async def listings(request: Request) -> Response:
    if not request.path_params["path"].endswith("listings.json"):
        raise ApiError(404, f"no listing {request.path_params['path']!r}", "Not Found")
    return JSONResponse(EMPTY_LISTINGS)


@authorized("read", "lab")
async def lsp_status(request: Request) -> Response:
    # jupyter_lsp's answer with no language servers: JupyterLab's LSP client asks on start and
    # retries a 404 for 20 s.
    return JSONResponse({"version": 2, "sessions": {}, "specs": {}})


@authorized("read", "lab")
async def nbconvert_formats(request: Request) -> Response:
    # jupyter_server's list of nbconvert exporters, empty: carme has no nbconvert (it would bring
    # traitlets and more). JupyterLab asks when a notebook opens and leaves "Export As" empty.
    return JSONResponse({})


# lab.placeholders: APIs JupyterLab asks for that belong to other servers' extensions, answered
# "none available" so the page logs no errors; an extension that serves one is listed without it.
PLACEHOLDERS = {
    "lsp": Route("/lsp/status", lsp_status, methods=["GET"]),
    "nbconvert": Route("/api/nbconvert", nbconvert_formats, methods=["GET"]),
}


@authorized("read", "lab")
async def news(request: Request) -> Response:
    # Asked only after the user opts in to Jupyter news; carme fetches no feed from the internet.
    return JSONResponse({"news": []})


@authorized("read", "lab")
async def update_check(request: Request) -> Response:
    return JSONResponse({"notification": None})


@authorized("read", "lab")
async def build_status(request: Request) -> Response:
    # The frontend is prebuilt: there is never anything to build.
    return JSONResponse({"status": "stable", "message": ""})


# -- licenses -------------------------------------------------------------------------------------


def _read_licenses(service: LabService) -> dict[str, Any]:
    bundles: dict[str, Any] = {}
    sources = [("@jupyterlab/application-top", service.paths.static_dir / "third-party-licenses.json")]
    sources += [(ext.name, ext.path / "static" / "third-party-licenses.json") for ext in service.extensions.values()]
    for name, path in sources:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("packages"), list):
            bundles[name] = {"packages": data["packages"]}
    return {"bundles": bundles}


@authorized("read", "lab")
async def licenses(request: Request) -> Response:
    params = request.query_params
    fmt = params.get("format", "json")
    if fmt not in ("json", "markdown", "csv"):
        raise ApiError(400, f"format {fmt!r} is not supported: expected json, markdown or csv", "Bad Request")
    report = await asyncio.to_thread(_read_licenses, _service(request))
    wanted = [b for b in params.get("bundles", "").split(",") if b]
    if wanted:
        report["bundles"] = {k: v for k, v in report["bundles"].items() if k in wanted}
    # As jupyterlab_server: full texts unless full_text=false (the Licenses panel sends no query).
    full_text = params.get("full_text", "true").lower() not in ("false", "0")
    for bundle in report["bundles"].values():
        bundle["packages"] = [{k: v for k, v in p.items() if full_text or k != "extractedText"}
                              for p in bundle["packages"]]
    if fmt == "json":
        return JSONResponse(report)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["bundle", "name", "versionInfo", "licenseId"])
        for name, bundle in report["bundles"].items():
            for p in bundle["packages"]:
                writer.writerow([name, p.get("name"), p.get("versionInfo"), p.get("licenseId")])
        return PlainTextResponse(out.getvalue(), media_type="text/csv")
    lines = []
    for name, bundle in report["bundles"].items():
        lines += [f"# {name}", ""]
        for p in bundle["packages"]:
            lines += [f"## {p.get('name')} v{p.get('versionInfo')}", "", f"License: {p.get('licenseId')}", ""]
            if full_text and p.get("extractedText"):
                lines += ["```", str(p["extractedText"]), "```", ""]
    return PlainTextResponse("\n".join(lines), media_type="text/markdown")


def api_routes(placeholders: list[str]) -> list[BaseRoute]:
    unknown = set(placeholders) - set(PLACEHOLDERS)
    if unknown:
        raise ConfigError(f"lab.placeholders: unknown {sorted(unknown)}; expected some of {sorted(PLACEHOLDERS)}")
    return [*(PLACEHOLDERS[name] for name in placeholders),
        Route("/lab/api/settings", settings_list, methods=["GET"]),
        Route("/lab/api/settings/", settings_list, methods=["GET"]),
        Route("/lab/api/settings/{plugin:path}", settings_get, methods=["GET"]),
        Route("/lab/api/settings/{plugin:path}", settings_put, methods=["PUT"], name="settings_put"),
        Route("/lab/api/workspaces", workspaces_list, methods=["GET"]),
        Route("/lab/api/workspaces/", workspaces_list, methods=["GET"]),
        Route("/lab/api/workspaces/{name:path}", workspace_get, methods=["GET"]),
        Route("/lab/api/workspaces/{name:path}", workspace_put, methods=["PUT"], name="workspace_put"),
        Route("/lab/api/workspaces/{name:path}", workspace_delete, methods=["DELETE"], name="workspace_delete"),
        Route("/lab/api/translations", translations_list, methods=["GET"]),
        Route("/lab/api/translations/", translations_list, methods=["GET"]),
        Route("/lab/api/translations/{locale}", translations_get, methods=["GET"]),
        Route("/lab/api/listings/{path:path}", listings, methods=["GET"]),
        Route("/lab/api/build", build_status, methods=["GET"]),
        Route("/lab/api/news", news, methods=["GET"]),
        Route("/lab/api/update", update_check, methods=["GET"]),
        Route("/lab/api/licenses", licenses, methods=["GET"]),
        Route("/lab/api/licenses/", licenses, methods=["GET"]),
    ]
