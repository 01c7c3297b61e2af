"""Routes of /api/contents and /files: parse the request, call the contents manager, shape the reply.

Wire behaviour follows jupyter_server 2.x (services/contents/handlers.py): status codes,
``Location`` and ``Last-Modified`` headers, which query values are 400s. Unknown query keys
(JupyterLab's bare cache-buster, ``contentProviderId=undefined``) are ignored, JSON bodies are
parsed whatever their Content-Type, and a trailing slash works like none.
"""

from __future__ import annotations

import asyncio
import mimetypes
from email.utils import formatdate
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..auth import base_path
from ..contents.models import http_date
from ..contents.streamed import split_string_field
from ..jsonutil import JSONResponse, dumps
from .permissions import allowed, authenticated, authorized, require
from .util import bad_request, json_object, object_of, parse_json, query_flag, read_body

if TYPE_CHECKING:
    from ..contents.manager import ContentsManager

KINDS = (None, "directory", "file", "notebook")
FILES_CSP = "frame-ancestors 'self'; sandbox allow-scripts"
STREAM_BYTES = 8 * 1024 * 1024  # PUT bodies above this may save their content without a copy


def manager(request: Request) -> ContentsManager:
    return request.app.state.server.contents  # type: ignore[no-any-return]


def api_path(request: Request) -> str:
    return "/".join(p for p in str(request.path_params.get("path", "")).split("/") if p)


def location(request: Request, path: str, *suffix: str) -> str:
    return base_path(request.scope) + "/".join(["api/contents", quote(path), *map(quote, suffix)]).replace("//", "/")


async def writable_for_user(request: Request, model: dict[str, Any]) -> None:
    """``writable`` says whether this user may write the file, not only the server (JupyterLab
    opens a notebook read-only when it is false); directory entries too."""
    authorizer = request.app.state.server.authorizer
    if not authorizer.active:
        return
    children = model["content"] if model["type"] == "directory" and isinstance(model.get("content"), list) else []
    for entry in (model, *children):
        if entry.get("writable"):
            entry["writable"] = await allowed(request, "write", "contents", entry["path"])


async def model_response(request: Request, model: dict[str, Any], status: int = 200, *,
                         with_location: bool = True) -> Response:
    await writable_for_user(request, model)
    headers = {"Last-Modified": http_date(model["last_modified"])}
    if with_location:
        headers["Location"] = location(request, model["path"])
    if model.get("content") is not None and model["type"] != "directory":
        # Encoding a 20 MB notebook is CPU work: keep it off the event loop.
        body = await asyncio.to_thread(dumps, model)
        return Response(body, status_code=status, headers=headers, media_type="application/json")
    return JSONResponse(model, status_code=status, headers=headers)


def typed_fields(model: dict[str, Any], **types: type) -> None:
    """A 400 naming the first field of ``model`` that is present, not null, and not of its JSON
    type (``chunk`` an integer, ``type`` a string): an unknown string type still means file."""
    names = {str: "a string", int: "an integer"}
    for key, kind in types.items():
        value = model.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise bad_request(f"{key} must be {names.get(kind, kind.__name__)}, not {type(value).__name__}")


def _kind(value: Any) -> str | None:
    """jupyter_server falls back to ``file`` for an unknown type."""
    return value if value in KINDS else "file"


@authorized("read", "contents", path="path")
async def get_contents(request: Request) -> Response:
    params = request.query_params
    kind = _kind(params.get("type") or None)
    fmt = params.get("format") or None
    if fmt not in (None, "text", "base64"):
        raise bad_request(f"Format {fmt!r} is invalid")
    content = query_flag(request, "content", True)
    require_hash = query_flag(request, "hash", False)
    model = await manager(request).get(api_path(request), content=content, type=kind, format=fmt,
                                       require_hash=require_hash)
    return await model_response(request, model, with_location=False)


async def save_model(request: Request, cm: ContentsManager) -> dict[str, Any] | None:
    """The PUT body. A big text or base64 file's content stays in the body's buffer, decoded
    piece by piece as it is written (when the manager takes that): no whole copy of it is made."""
    body = await read_body(request)
    if len(body) > STREAM_BYTES and cm.streams_content:
        split = await asyncio.to_thread(split_string_field, body, "content")
        if split is not None:
            fields, content = split
            if fields.get("type") == "file" and fields.get("format") in ("text", "base64") and "chunk" not in fields:
                return {**fields, "content": content}
    return object_of(await parse_json(body, required=False))


@authorized("write", "contents", path="path")
async def put_contents(request: Request) -> Response:
    path = api_path(request)
    cm = manager(request)
    model = await save_model(request, cm)
    if not model:
        return await model_response(request, await cm.new_untitled(path), 201)
    if model.get("copy_from"):
        raise bad_request("Cannot copy with PUT, only POST")
    typed_fields(model, type=str, format=str, chunk=int, path=str, name=str)
    exists = await cm.file_exists(path)  # a path outside the root is a 404 here, before any hook
    if not cm.allow_hidden and (await cm.is_hidden(path) or (
            isinstance(model.get("path"), str) and await cm.is_hidden(model["path"]))):
        raise bad_request(f"Cannot create file or directory {path!r}")
    if model.get("type") not in (None, "", "directory", "file", "notebook"):
        model["type"] = "file"  # as jupyter_server: an unknown type is a file
    if model.get("chunk") in (None, 1):  # extensions may change what is written (widget state)
        await request.app.state.server.notify("carme_before_save", path=path, model=model)
    if exists:
        return await model_response(request, await cm.save(model, path))
    return await model_response(request, await cm.save(model, path, action="upload"), 201)


@authorized("write", "contents", path="path")
async def post_contents(request: Request) -> Response:
    path = api_path(request)
    cm = manager(request)
    if await cm.file_exists(path):
        raise bad_request("Cannot POST to files, use PUT instead.")
    model = await json_object(request, required=False) or {}
    typed_fields(model, copy_from=str, ext=str, type=str)
    copy_from = model.get("copy_from")
    if copy_from:
        await require(request, "read", "contents", copy_from)
        return await model_response(request, await cm.copy(copy_from, path), 201)
    ext, kind = model.get("ext", "") or "", model.get("type", "") or ""
    if kind not in ("", "directory", "file", "notebook"):
        kind = "file"
    return await model_response(request, await cm.new_untitled(path, type=kind, ext=ext), 201)


@authorized("write", "contents", path="path")
async def patch_contents(request: Request) -> Response:
    path = api_path(request)
    model = await json_object(request, required=False)
    if model is None:
        raise bad_request("JSON body missing")
    new_path = model.get("path", path)
    if not isinstance(new_path, str):
        raise bad_request("path must be a string (the new API path)")
    await require(request, "write", "contents", new_path)
    return await model_response(request, await manager(request).rename(path, new_path))


@authorized("write", "contents", path="path")
async def delete_contents(request: Request) -> Response:
    await manager(request).delete(api_path(request))
    return Response(status_code=204)


@authorized("read", "contents", path="path")
async def list_checkpoints(request: Request) -> Response:
    return JSONResponse(await manager(request).list_checkpoints(api_path(request)))


@authorized("write", "contents", path="path")
async def create_checkpoint(request: Request) -> Response:
    path = api_path(request)
    checkpoint = await manager(request).create_checkpoint(path)
    return JSONResponse(checkpoint, status_code=201,
                        headers={"Location": location(request, path, "checkpoints", checkpoint["id"])})


@authorized("write", "contents", path="path")
async def restore_checkpoint(request: Request) -> Response:
    await manager(request).restore_checkpoint(request.path_params["checkpoint_id"], api_path(request))
    return Response(status_code=204)


@authorized("write", "contents", path="path")
async def delete_checkpoint(request: Request) -> Response:
    await manager(request).delete_checkpoint(request.path_params["checkpoint_id"], api_path(request))
    return Response(status_code=204)


@authorized("write", "contents", path="path")
async def trust_notebook(request: Request) -> Response:
    await manager(request).trust_notebook(api_path(request))
    return Response(status_code=201)


def files_media_type(name: str) -> str:
    if name.endswith(".ipynb"):
        return "application/x-ipynb+json"
    return mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"


@authorized("read", "contents", path="path")
async def get_file(request: Request) -> Response:
    """Raw file bytes, streamed from disk (Range requests work), under the contents path policy."""
    path = api_path(request)
    stream = await manager(request).open_file(path)
    headers = {
        "Cache-Control": "no-cache" if "v" not in request.query_params else "max-age=31536000",
        "Content-Security-Policy": FILES_CSP,
        "X-Content-Type-Options": "nosniff",
    }
    if path.endswith(".ipynb") or request.query_params.get("download") not in (None, "", "0", "false"):
        headers["Content-Disposition"] = f"attachment; filename*=utf-8''{quote(stream.name)}"
    media_type = files_media_type(stream.name)
    if stream.os_path is not None:
        response: Response = FileResponse(stream.os_path, headers=headers, media_type=media_type,
                                              stat_result=stream.stat_result)
        if "etag" in response.headers:
            del response.headers["etag"]  # jupyter_server sends no ETag on /files
        return response
    assert stream.data is not None
    headers["Last-Modified"] = formatdate(stream.last_modified, usegmt=True)
    return Response(stream.data if request.method != "HEAD" else b"", media_type=media_type, headers=headers)


@authenticated  # the target checks
async def notebooks_redirect(request: Request) -> Response:
    """/api/notebooks/PATH is the deprecated name of /api/contents/PATH (jupyter_server redirects)."""
    target = location(request, api_path(request))
    if request.url.query:
        target += "?" + request.url.query
    return RedirectResponse(target, status_code=301 if request.method == "GET" else 308)


HANDLERS = {"GET": get_contents, "PUT": put_contents, "POST": post_contents, "PATCH": patch_contents,
            "DELETE": delete_contents}


def _by_method(path: str) -> list[BaseRoute]:
    """One route per method (each declares its own permission); Starlette answers 405 for others."""
    return [Route(path, handler, methods=[method], name=f"contents_{method.lower()}_{path}")
            for method, handler in HANDLERS.items()]


def routes() -> list[BaseRoute]:
    """The contents routes; checkpoint and trust paths first, since ``{path:path}`` is greedy."""
    return [
        Route("/api/contents/{path:path}/checkpoints", list_checkpoints, methods=["GET"]),
        Route("/api/contents/{path:path}/checkpoints", create_checkpoint, methods=["POST"],
              name="create_checkpoint"),
        Route("/api/contents/{path:path}/checkpoints/{checkpoint_id}", restore_checkpoint, methods=["POST"]),
        Route("/api/contents/{path:path}/checkpoints/{checkpoint_id}", delete_checkpoint, methods=["DELETE"],
              name="delete_checkpoint"),
        Route("/api/contents/{path:path}/trust", trust_notebook, methods=["POST"]),
        *_by_method("/api/contents"),
        *_by_method("/api/contents/{path:path}"),
        Route("/files/{path:path}", get_file, methods=["GET", "HEAD"]),
        Route("/api/notebooks", notebooks_redirect, methods=list(HANDLERS)),
        Route("/api/notebooks/{path:path}", notebooks_redirect, methods=list(HANDLERS), name="notebooks_path"),
    ]

