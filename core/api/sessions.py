"""Routes of /api/sessions, with jupyter_server's shapes and status codes."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..auth import base_path
from ..errors import ApiError
from ..jsonutil import JSONResponse
from ..kernels.kernel import KernelStartError
from ..kernels.manager import KernelIdConflict, NoSuchKernel
from ..kernels.specs import NoSuchKernelSpec
from ..sessions import KernelGone, NoSuchSession, SessionRecord
from .kernels import ID_RE
from .permissions import authorized
from .server import server_of
from .util import bad_request, json_body


def session_of(request: Request) -> SessionRecord:
    session_id = request.path_params["session_id"]
    try:
        if not ID_RE.match(session_id):
            raise NoSuchSession(session_id)
        return server_of(request).sessions.get(session_id)
    except NoSuchSession as exc:
        raise ApiError(404, str(exc), "Not Found") from None


async def body_of(request: Request) -> dict[str, Any]:
    body = await json_body(request, required=False)
    if body is None:
        raise bad_request("No JSON data provided")
    if not isinstance(body, dict):
        raise bad_request(f"request body must be a JSON object, not {type(body).__name__}")
    notebook = body.get("notebook")
    if isinstance(notebook, dict) and ("path" in notebook or "name" in notebook):  # the pre-5.0 shape
        body["type"] = "notebook"
        body["path"] = notebook.get("path", notebook.get("name"))
    return body


def field(body: dict[str, Any], key: str, required: bool = False) -> str | None:
    if key not in body or (body[key] is None and not required):
        if required:
            raise bad_request(f"Missing field in JSON data: {key}")
        return None
    value = body[key]
    if not isinstance(value, str):
        raise bad_request(f"{key!r} must be a string, not {type(value).__name__}")
    return value


def kernel_fields(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """(kernel id, kernel name) from ``{"kernel": {"id"?, "name"?}}``."""
    kernel = body.get("kernel")
    if kernel is None:
        return None, None
    if not isinstance(kernel, dict):
        raise bad_request(f"'kernel' must be an object like {{\"name\": \"python3\"}}, not {type(kernel).__name__}")
    kernel_id, name = kernel.get("id"), kernel.get("name")
    for key, value in (("kernel.id", kernel_id), ("kernel.name", name)):
        if value is not None and not isinstance(value, str):
            raise bad_request(f"{key!r} must be a string, not {type(value).__name__}")
    return kernel_id or None, name or None


def not_available(name: str | None, exc: Exception) -> Response:
    """jupyter_server's 501 for a kernel that cannot be started (JupyterLab shows short_message);
    a start refused with a status of its own (a gateway that is down: 503) keeps it."""
    if isinstance(exc, KernelStartError) and exc.status != 500:
        raise ApiError(exc.status, f"The '{name}' kernel could not be started: {exc}", exc.reason)
    if isinstance(exc, NoSuchKernelSpec):
        message = (f"The '{name}' kernel is not available. Please pick another suitable kernel instead, "
                   "or install that kernel.")
        short = f"{name} not found"
    else:
        message, short = f"The '{name}' kernel could not be started: {exc}", f"Error starting kernel {name}"
    return JSONResponse({"message": message, "short_message": short, "reason": None}, status_code=501)


@authorized("read", "sessions")
async def list_sessions(request: Request) -> Response:
    return JSONResponse(server_of(request).sessions.list())


@authorized("write", "sessions")
@authorized("write", "kernels")
async def create_session(request: Request) -> Response:
    server = server_of(request)
    body = await body_of(request)
    path = field(body, "path", required=True)
    kind = field(body, "type", required=True)
    name = field(body, "name")
    kernel_id, kernel_name = kernel_fields(body)
    assert path is not None
    if kernel_id is not None and not ID_RE.match(kernel_id):
        raise bad_request(f"'kernel.id' {kernel_id!r} is not a UUID")
    try:
        session = await server.sessions.create(path, name, kind, kernel_name, kernel_id,
                                               server.auth.named_user(request.scope.get("user")))
    except KernelIdConflict as exc:
        raise ApiError(409, str(exc), "Conflict") from None
    except (NoSuchKernelSpec, KernelStartError) as exc:
        return not_available(kernel_name or server.settings["default_kernel_name"], exc)
    response = JSONResponse(server.sessions.model(session), status_code=201)
    response.headers["Location"] = base_path(request.scope) + "api/sessions/" + quote(session.id)
    return response


@authorized("read", "sessions")
async def get_session(request: Request) -> Response:
    return JSONResponse(server_of(request).sessions.model(session_of(request)))


@authorized("write", "sessions")
@authorized("write", "kernels")
async def patch_session(request: Request) -> Response:
    server = server_of(request)
    session = session_of(request)
    body = await body_of(request)
    kernel_id, kernel_name = kernel_fields(body)
    try:
        await server.sessions.update(session.id, field(body, "path"), field(body, "name"), field(body, "type"),
                                     kernel_id, None if kernel_id else kernel_name,
                                     server.auth.named_user(request.scope.get("user")))
    except NoSuchKernel:
        raise bad_request(f"No such kernel: {kernel_id}") from None
    except (NoSuchKernelSpec, KernelStartError) as exc:
        return not_available(kernel_name, exc)
    return JSONResponse(server.sessions.model(session))


@authorized("write", "sessions")
@authorized("write", "kernels")
async def delete_session(request: Request) -> Response:
    server = server_of(request)
    session_id = request.path_params["session_id"]
    try:
        if not ID_RE.match(session_id):
            raise NoSuchSession(session_id)
        await server.sessions.delete(session_id)
    except NoSuchSession as exc:
        raise ApiError(404, str(exc), "Not Found") from None
    except (KernelGone, NoSuchKernel):
        raise ApiError(410, "Kernel deleted before session", "Gone") from None
    return Response(status_code=204)


def routes() -> list[BaseRoute]:
    return [
        Route("/api/sessions", list_sessions, methods=["GET"]),
        Route("/api/sessions", create_session, methods=["POST"], name="create_session"),
        Route("/api/sessions/{session_id}", get_session, methods=["GET"]),
        Route("/api/sessions/{session_id}", patch_session, methods=["PATCH"], name="patch_session"),
        Route("/api/sessions/{session_id}", delete_session, methods=["DELETE"], name="delete_session"),
    ]
