"""The built-in authentication plugin: its settings, /login and /logout.

The checks themselves are :mod:`carme.auth` (the middleware create_app installs first).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

from ..api import login
from ..config import Setting
from ..hooks import hookimpl

if TYPE_CHECKING:
    from ..server import Server


@hookimpl
def carme_register_routes(server: Server) -> list[BaseRoute]:
    return login.routes()


@hookimpl
def carme_register_public_paths(server: Server) -> list[str]:
    return ["/login", "/logout"]


@hookimpl
def carme_register_settings() -> list[Setting]:
    return [
        Setting("token", str, None, "Token clients authenticate with (default: JUPYTER_TOKEN, else generated)",
                nullable=True),
        Setting("cookie_secret_file", str, "", "File holding the secret that signs login cookies, kept "
                "across restarts (default: carme_cookie_secret in the Jupyter runtime dir, made mode 0600)"),
        Setting("auth_enabled", bool, True, "Require authentication; false serves everyone as an anonymous user"),
        Setting("allow_origin", str, "", "Origin allowed for cross-origin requests ('*' for any)"),
        Setting("allow_origin_pat", str, "", "Regular expression of origins allowed for cross-origin requests"),
        Setting("allow_credentials", bool, False, "Send Access-Control-Allow-Credentials: true"),
        Setting("disable_check_xsrf", bool, False, "Skip the XSRF check on cookie-authenticated requests"),
        Setting("allow_remote_access", bool, None, "Accept Host headers that are not local "
                "(default: yes, except when serving on a loopback address)", nullable=True),
        Setting("local_hostnames", list, ["localhost"], "Host names treated as local by the Host check"),
        Setting("login_url", str, "", "Where a browser without credentials is sent, with ?next= "
                "(default: carme's own /login page; an embedding product points it at its own)"),
        Setting("logout_url", str, "", "Where /logout sends the browser after clearing the login cookie "
                "(default: carme's own /login page; a hub's spawned server: the hub's logout)"),
    ]
