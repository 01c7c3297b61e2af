"""Run an ASGI app on a real uvicorn bound to 127.0.0.1 (a free port) for the duration of a test."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn


@dataclass
class Served:
    """A running server: its base URL (``http://127.0.0.1:PORT``) and the app."""

    url: str
    app: Any
    port: int

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[len("http"):]


@contextlib.contextmanager
def serve(app: Any, **config: Any) -> Iterator[Served]:
    """Serve ``app`` with uvicorn in a background thread (its own event loop), lifespan on."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="on", ws_max_size=64 * 1024 * 1024, **config))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn failed to start; see the log above")
        threading.Event().wait(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Served(f"http://127.0.0.1:{port}", app, port)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
