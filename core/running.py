"""The uvicorn settings carme needs, for ``carme serve`` and for embedders alike.

uvicorn's defaults suit HTTP APIs, not a kernel relay: it negotiates permessage-deflate with every
browser (compressing kernel output costs several times the server CPU of relaying it) and refuses
websocket messages over 16 MiB (a notebook's widget state or a big upload can be larger), and its
default websocket implementation (the websockets library's legacy protocol) spends a lock, a
future and a task switch on every message it sends. :data:`WEBSOCKET_PROTOCOL` is the one carme
runs on.
:func:`uvicorn_options` gives the settings ``carme serve`` runs with; :func:`run` is
``uvicorn.run`` with them, so an embedder gets the same server in one call.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import CarmeApp

# uvicorn's websocket implementation (its ``ws`` setting) for carme: carme's own thin one over the
# websockets library's sans-I/O protocol (carme.websocket), imported by uvicorn when it starts.
# Tests serve with it too.
WEBSOCKET_PROTOCOL = "carme.websocket:WebSocketProtocol"


def uvicorn_options(app: CarmeApp) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` / ``uvicorn.Config`` that carme's kernel websockets
    need, from ``app``'s settings (pass carme's app even when a host app mounts it)."""
    settings = app.server.settings
    tls: dict[str, Any] = {}
    if settings["certfile"]:
        tls = {"ssl_certfile": settings["certfile"], "ssl_keyfile": settings["keyfile"] or None}
        if settings["client_ca"]:  # as jupyter_server's: a client without a certificate it signed is refused
            tls |= {"ssl_ca_certs": settings["client_ca"], "ssl_cert_reqs": ssl.CERT_REQUIRED}
    return tls | {
        "lifespan": "on",
        "ws": WEBSOCKET_PROTOCOL,
        # Browsers always offer permessage-deflate; compressing kernel output costs ~8x the server
        # CPU of relaying it (jupyter_server does not compress either).
        "ws_per_message_deflate": False,
        # uvicorn refuses bigger messages itself; the relay enforces the same setting with 1009.
        "ws_max_size": app.server.settings["websocket_max_message_size"],
        "timeout_graceful_shutdown": 10,
    }


def run(app: Any, carme_app: CarmeApp | None = None, **uvicorn_kwargs: Any) -> None:
    """``uvicorn.run(app)`` with :func:`uvicorn_options`; ``uvicorn_kwargs`` (host, port, ...) win.

    ``app`` is carme's app, or a host app that mounts it: then pass the mounted one as
    ``carme_app``, whose settings decide."""
    import uvicorn  # lazily, as the CLI: importing carme does not pull in the server

    options = uvicorn_options(carme_app if carme_app is not None else app)
    uvicorn.run(app, **(options | uvicorn_kwargs))
