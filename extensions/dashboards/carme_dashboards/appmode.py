"""App mode: ``carme dashboard NOTEBOOK|FOLDER`` serves dashboards and nothing else.

The command builds the app with the options of ``carme serve`` (port, ip, token or no auth, base
URL, settings), only the dashboards extension (and widgets, when installed) enabled, and the
``dashboards.app_mode`` setting on. :class:`AppModeGuard` then lets through only the dashboard
pages, their assets, the visitors' own kernel websockets and the login page: no JupyterLab, no
contents API (read or write), no kernel or session list, nothing of the core's REST API. In
single-notebook mode any other path is taken for a file next to the notebook and redirected to
``dashboards/files/`` (where the allow/deny lists apply), as Voila does.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from urllib.parse import quote

from starlette.types import ASGIApp, Receive, Scope, Send

from carme.auth import base_path
from carme.cli import Command, add_server_arguments, app_from_args, serve_app
from carme.config import ConfigError
from carme.jsonutil import dumps
from carme.plugins import installed_extensions

ALLOWED_PREFIXES = ("/dashboards/",)
ALLOWED_EXACT = frozenset({"/", "/dashboards", "/login", "/logout"})
COMPANIONS = ("widgets",)  # enabled with dashboards when installed: server-held widget state


class AppModeGuard:
    """ASGI middleware refusing (404) every path that is not the dashboards'."""

    def __init__(self, app: ASGIApp, single: bool) -> None:
        self.app = app
        self.single = single

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):] or "/"
        if path in ALLOWED_EXACT or path.startswith(ALLOWED_PREFIXES):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        if self.single and scope["method"] in ("GET", "HEAD"):
            location = base_path(scope) + "dashboards/files/" + quote(path.lstrip("/"))
            await send({"type": "http.response.start", "status": 302,
                        "headers": [(b"location", location.encode()), (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        body = dumps({"message": f"{path} is not served in dashboard app mode", "reason": "Not Found"})
        await send({"type": "http.response.start", "status": 404,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", help="a notebook (served at /) or a folder (its notebooks listed at /)")
    add_server_arguments(parser)


def app_settings(target: str) -> tuple[str, dict[str, object]]:
    """(root folder, settings) of app mode for a notebook or folder given on the command line."""
    path = Path(target).expanduser()
    if path.is_dir():
        return str(path), {"dashboards.app_mode": True, "dashboards.notebook": "", "default_url": "/"}
    if path.is_file():
        if path.suffix not in (".ipynb", ".py"):
            raise ConfigError(f"{target}: not a notebook (.ipynb) or a Python script (.py)")
        return str(path.parent), {"dashboards.app_mode": True, "dashboards.notebook": path.name, "default_url": "/"}
    raise ConfigError(f"{target}: no such notebook or folder")


def run(args: argparse.Namespace) -> int:
    root, settings = app_settings(args.target)
    installed = installed_extensions()
    extensions = ["dashboards", *(name for name in COMPANIONS if name in installed)]
    app = app_from_args(args, root_dir=root, extensions=extensions, settings=settings)
    return serve_app(app, args.log_level)


COMMAND = Command("dashboard", "serve a notebook (or a folder of notebooks) as a web app, and nothing else",
                  run, add_arguments)
