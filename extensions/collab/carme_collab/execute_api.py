"""Server-side execution routes, compatible with jupyter-server-nbmodel (and with the executor of
jupyter-docprovider, which JupyterLab uses when the page config says ``serverSideExecution``).

- ``POST /api/kernels/KERNEL_ID/execute`` with ``{"cell_id", "document_id"}`` (docprovider) or
  ``{"code", "metadata": {"cell_id", "document_id" | "document_path"}}`` (nbmodel): 202 with a
  ``Location`` of the request; the cell's outputs are written into the document as they arrive.
- ``GET /api/kernels/KERNEL_ID/requests/REQUEST_ID``: 202 while queued or running (outputs so far),
  200 with ``status``, ``execution_count`` and ``outputs`` (a JSON string) once done, 500 when it
  could not run, 404 unknown.
- ``GET /api/kernels/KERNEL_ID/execute``: the requests not done yet.
- ``DELETE /api/kernels/KERNEL_ID/requests/REQUEST_ID``: interrupt the kernel (204).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from carme.api.permissions import authorized
from carme.api.util import json_object
from carme.errors import ApiError
from carme.jsonutil import JSONResponse

from .api import service_of
from .execution import CellExecutor, Execution


def _executor(request: Request) -> CellExecutor:
    return service_of(request).executor


def _kernel(request: Request) -> object:
    kernel_id = request.path_params["kernel_id"]
    kernels = request.app.state.server.kernels
    if kernel_id not in kernels:
        raise ApiError(404, f"Kernel does not exist: {kernel_id}", "Not Found")
    return kernels.get(kernel_id)


def _optional_str(body: dict[str, object], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise ApiError(400, f"{key!r} must be a string", "Bad Request")
    return value


@authorized("execute", "kernels")
async def execute(request: Request) -> Response:
    kernel = _kernel(request)
    body = await json_object(request)
    assert body is not None
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ApiError(400, "'metadata' must be an object", "Bad Request")
    code = _optional_str(body, "code")
    cell_id = _optional_str(body, "cell_id") or _optional_str(metadata, "cell_id")
    document_id = _optional_str(body, "document_id") or _optional_str(metadata, "document_id")
    document_path = _optional_str(metadata, "document_path")
    if code is None and not (cell_id and (document_id or document_path)):
        raise ApiError(400, "give the 'code' to run, or the 'cell_id' and 'document_id' of a cell", "Bad Request")
    execution = _executor(request).submit(kernel, code, cell_id, document_id, document_path)  # type: ignore[arg-type]
    location = execution.context()["request_url"]
    return JSONResponse(execution.report(), status_code=202,
                        headers={"Location": location, "Access-Control-Expose-Headers": "Location"})


def _execution(request: Request) -> Execution:
    kernel_id, request_id = request.path_params["kernel_id"], request.path_params["request_id"]
    execution = _executor(request).get(kernel_id, request_id)
    if execution is None:
        raise ApiError(404, f"Execution request {request_id} for kernel {kernel_id} does not exist", "Not Found")
    return execution


@authorized("read", "kernels")
async def request_status(request: Request) -> Response:
    execution = _execution(request)
    if execution.status != "complete":
        return JSONResponse(execution.report(), status_code=202)
    return JSONResponse(execution.report(), status_code=500 if execution.failure else 200)


@authorized("write", "kernels")
async def interrupt(request: Request) -> Response:
    execution = _execution(request)
    if execution.status != "complete":
        await request.app.state.server.kernels.interrupt_kernel(execution.kernel_id)
    return Response(status_code=204)


@authorized("read", "kernels")
async def pending(request: Request) -> Response:
    kernel_id = request.path_params["kernel_id"]
    return JSONResponse({"kernel_id": kernel_id,
                         "requests": [ex.report() for ex in _executor(request).pending(kernel_id)]})


def routes() -> list[BaseRoute]:
    return [
        Route("/api/kernels/{kernel_id}/execute", execute, methods=["POST"]),
        Route("/api/kernels/{kernel_id}/execute", pending, methods=["GET"]),
        Route("/api/kernels/{kernel_id}/requests/{request_id}", request_status, methods=["GET"]),
        Route("/api/kernels/{kernel_id}/requests/{request_id}", interrupt, methods=["DELETE"]),
    ]
