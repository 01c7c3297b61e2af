"""The built-in server plugin: where and how to serve (the top-level settings), and the
server-level routes /api, /api/status, /api/me, /api/shutdown and /api/extensions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

from ..api import extensions as extensions_api
from ..api import server as server_api
from ..config import Setting
from ..hooks import hookimpl

if TYPE_CHECKING:
    from ..server import Server


@hookimpl
def carme_register_routes(server: Server) -> list[BaseRoute]:
    return [*server_api.routes(), *extensions_api.routes()]


@hookimpl
def carme_register_public_paths(server: Server) -> list[str]:
    # /api answers the version only (clients probe it before they have a token).
    return ["/api"]


@hookimpl
def carme_register_api_paths(server: Server) -> list[str]:
    return ["/api", "/api/"]


@hookimpl
def carme_register_settings() -> list[Setting]:
    return [
        Setting("root_dir", str, None, "Folder served (default: the current directory)", nullable=True),
        Setting("ip", str, "127.0.0.1", "Address `carme serve` listens on"),
        Setting("port", int, 8888, "Port `carme serve` listens on (0 picks a free one)", minimum=0),
        Setting("port_retries", int, 50, "How many of the next ports `carme serve` tries when the port is taken "
                "(0: exactly the port, or fail; a hub's spawner expects its own)", minimum=0),
        Setting("base_url", str, "/", "URL prefix of every route"),
        Setting("certfile", str, "", "TLS certificate (PEM) to serve HTTPS with; empty: plain HTTP"),
        Setting("keyfile", str, "", "Private key of certfile (empty: it is in certfile)"),
        Setting("client_ca", str, "", "CA certificates (PEM) of which clients must show a certificate; "
                "empty: no client certificate asked for"),
        Setting("open_browser", bool, True, "`carme serve` opens a browser"),
        Setting("default_url", str, "/lab", "Where / redirects when an extension serves a frontend, and the "
                "URL carme serve prints (when set, or when lab is on)"),
    ]
