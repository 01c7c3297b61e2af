"""Request body size limit: bodies over ``max_body_size`` get a 413 JSON error, never buffered.

A declared ``Content-Length`` over the limit is refused before the body is read; a body sent
without one (chunked) is counted as it arrives and refused as soon as it passes the limit.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import ApiError, error_response


def too_large(limit: int) -> ApiError:
    return ApiError(413, f"request body is larger than max_body_size ({limit} bytes)", "Payload Too Large")


class BodyLimitMiddleware:
    """Pure ASGI middleware enforcing ``limit`` bytes per HTTP request body."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.limit:
                    exc = too_large(self.limit)
                    await error_response(exc.status, exc.message, exc.reason)(scope, receive, send)
                    return
        received = 0
        limit = self.limit

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large(limit)  # the route's body read fails; the handler answers 413
            return message

        await self.app(scope, counting_receive, send)
