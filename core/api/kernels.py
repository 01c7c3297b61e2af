"""Routes of /api/kernels, /api/kernelspecs and /kernelspecs/NAME/RESOURCE (the websocket
/api/kernels/ID/channels lives in kernel_ws.py)."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from ..auth import base_path
from ..errors import ApiError
from ..jsonutil import JSONResponse
from ..kernels.kernel import Kernel, KernelDeadError, KernelStartError
from ..kernels.manager import KernelIdConflict, NoSuchKernel
from ..kernels.specs import KernelSpec, NoSuchKernelSpec
from .permissions import authorized
from .server import server_of
from .util import bad_request, json_object

if TYPE_CHECKING:
    from ..server import Server

ID_RE = re.compile(r"^\w+-\w+-\w+-\w+-\w+$")  # jupyter_server's kernel/session id pattern
SPEC_NAME_RE = re.compile(r"^[\w.\-%]+$")


def kernel_of(request: Request) -> Kernel:
    """The kernel named in the URL; 404 with jupyter_server's message when there is none."""
    kernel_id = request.path_params["kernel_id"]
    try:
        if not ID_RE.match(kernel_id):
            raise NoSuchKernel(kernel_id)
        return server_of(request).kernels.get(kernel_id)
    except NoSuchKernel as exc:
        raise ApiError(404, str(exc), "Not Found") from None


def optional_string(body: dict[str, object], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise bad_request(f"{key!r} must be a string, not {type(value).__name__}")
    return value


@authorized("read", "kernels")
async def list_kernels(request: Request) -> Response:
    return JSONResponse(server_of(request).kernels.list())


@authorized("write", "kernels")
async def start_kernel(request: Request) -> Response:
    server = server_of(request)
    body = await json_object(request, required=False) or {}
    name, path = optional_string(body, "name"), optional_string(body, "path")
    kernel_id = optional_string(body, "kernel_id")
    if kernel_id is not None and not ID_RE.match(kernel_id):
        raise bad_request(f"'kernel_id' {kernel_id!r} is not a UUID")
    try:
        # pending=None: answered at once with the kernel starting when pending kernels are on
        kernel = await server.kernels.start_kernel(name, path, kernel_id=kernel_id, pending=None,
                                                   user=server.auth.named_user(request.scope.get("user")))
    except KernelIdConflict as exc:
        raise ApiError(409, str(exc), "Conflict") from None
    except NoSuchKernelSpec as exc:
        raise bad_request(f"{exc}: no kernelspec of that name is installed") from None
    except KernelStartError as exc:
        raise ApiError(exc.status, f"Kernel failed to start: {exc}", exc.reason or "Internal Server Error") from None
    response = JSONResponse(kernel.model(), status_code=201)
    response.headers["Location"] = base_path(request.scope) + "api/kernels/" + quote(kernel.id)
    return response


@authorized("read", "kernels")
async def get_kernel(request: Request) -> Response:
    return JSONResponse(kernel_of(request).model())


@authorized("write", "kernels")
async def delete_kernel(request: Request) -> Response:
    kernel = kernel_of(request)
    try:
        await server_of(request).kernels.shutdown_kernel(kernel.id)
    except NoSuchKernel as exc:  # shut down by another request meanwhile
        raise ApiError(404, str(exc), "Not Found") from None
    return Response(status_code=204)


@authorized("write", "kernels")
async def interrupt_kernel(request: Request) -> Response:
    kernel = kernel_of(request)
    try:
        await server_of(request).kernels.interrupt_kernel(kernel.id)
    except (KernelDeadError, KernelStartError, TimeoutError) as exc:
        raise ApiError(500, f"Exception interrupting kernel: {exc}", "Internal Server Error") from None
    return Response(status_code=204)


@authorized("write", "kernels")
async def restart_kernel(request: Request) -> Response:
    kernel = kernel_of(request)
    try:
        await server_of(request).kernels.restart_kernel(kernel.id)
    except (KernelDeadError, KernelStartError, NoSuchKernel) as exc:
        status, reason = (exc.status, exc.reason) if isinstance(exc, KernelStartError) else (500, None)
        raise ApiError(status, f"Exception restarting kernel: {exc}", reason or "Internal Server Error") from None
    return JSONResponse(kernel.model())


@authorized("read", "kernelspecs")
async def list_kernelspecs(request: Request) -> Response:
    server = server_of(request)
    return JSONResponse(await asyncio.to_thread(server.kernelspecs.models, base_path(request.scope)))


async def _spec(request: Request) -> tuple[Server, KernelSpec]:
    server = server_of(request)
    name = request.path_params["name"]
    if not SPEC_NAME_RE.match(name):
        raise ApiError(404, f"Kernel spec {name!r} not found", "Not Found")
    try:
        return server, await asyncio.to_thread(server.kernelspecs.get, name)
    except NoSuchKernelSpec:
        raise ApiError(404, f"Kernel spec {name!r} not found", "Not Found") from None


@authorized("read", "kernelspecs")
async def get_kernelspec(request: Request) -> Response:
    server, spec = await _spec(request)
    return JSONResponse(server.kernelspecs.model(spec, base_path(request.scope)))


@authorized("read", "kernelspecs")
async def kernelspec_resource(request: Request) -> Response:
    _server, spec = await _spec(request)
    filename = request.path_params["filename"]
    path = await asyncio.to_thread(spec.resource_path, filename)
    if path is None:
        raise ApiError(404, f"Kernel spec resource {filename!r} not found", "Not Found")
    headers = {"Cache-Control": "max-age=2592000"} if filename.endswith(".png") else None
    return FileResponse(path, headers=headers)


def routes() -> list[BaseRoute]:
    return [
        Route("/api/kernels", list_kernels, methods=["GET"]),
        Route("/api/kernels", start_kernel, methods=["POST"], name="start_kernel"),
        Route("/api/kernels/{kernel_id}", get_kernel, methods=["GET"]),
        Route("/api/kernels/{kernel_id}", delete_kernel, methods=["DELETE"], name="delete_kernel"),
        Route("/api/kernels/{kernel_id}/interrupt", interrupt_kernel, methods=["POST"]),
        Route("/api/kernels/{kernel_id}/restart", restart_kernel, methods=["POST"]),
        Route("/api/kernelspecs", list_kernelspecs, methods=["GET"]),
        Route("/api/kernelspecs/{name}", get_kernelspec, methods=["GET"]),
        Route("/kernelspecs/{name}/{filename}", kernelspec_resource, methods=["GET", "HEAD"]),
    ]
