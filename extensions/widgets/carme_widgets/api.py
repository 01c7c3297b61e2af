"""HTTP routes of the widgets extension: GET /api/widgets/KERNEL_ID."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from carme.api.permissions import authorized
from carme.errors import ApiError
from carme.jsonutil import JSONResponse

from .service import UnknownKernelError

if TYPE_CHECKING:
    from .service import WidgetsService


def service_of(request: Request) -> WidgetsService:
    service = request.app.state.server.services.get("widgets")
    if service is None:
        raise ApiError(503, "the widgets extension has not started", "Service Unavailable")
    return service  # type: ignore[no-any-return]


@authorized("read", "kernels")
async def kernel_widget_state(request: Request) -> Response:
    """The kernel's live widgets in the notebook widget-state format (version 2.0)."""
    kernel_id = request.path_params["kernel_id"]
    try:
        state = service_of(request).state(kernel_id)
    except UnknownKernelError:
        raise ApiError(404, f"Kernel does not exist: {kernel_id}", "Not Found") from None
    return JSONResponse(state)


def routes() -> list[BaseRoute]:
    return [Route("/api/widgets/{kernel_id}", kernel_widget_state, methods=["GET"])]
