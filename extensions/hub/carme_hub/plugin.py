"""The hub extension's composition root: settings, the ``singleuser`` command, and, when a hub
spawned this server (``hub.api_url`` is set), its identity, access, OAuth routes, activity reports
and the page config of JupyterLab's hub menu. Without a hub every hook stays out of the way."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from carme import hookimpl
from carme.auth import AuthResult, User
from carme.config import Setting

from . import oauth
from .activity import ActivityReporter
from .cli import COMMAND
from .environment import OAUTH_LOGIN, settings_from_environ
from .middleware import HubLogoutMiddleware, HubVersionMiddleware
from .service import HubService, HubUser

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection, Request

    from carme.cli import Command
    from carme.server import Server


def _active(server: Server) -> bool:
    return bool(server.settings["hub.api_url"])


@hookimpl
def carme_register_settings() -> list[Setting]:
    return [
        Setting("api_url", str, "", "The hub's API URL (JUPYTERHUB_API_URL); empty: no hub, the extension idles"),
        Setting("hub_prefix", str, "/hub/", "The hub's URL prefix (JUPYTERHUB_BASE_URL + hub/)"),
        Setting("host", str, "", "The hub's origin in URLs sent to browsers (JUPYTERHUB_HOST; empty: same origin)"),
        Setting("user", str, "", "The user who owns this server (JUPYTERHUB_USER)"),
        Setting("server_name", str, "", "This server's name; empty for the default server (JUPYTERHUB_SERVER_NAME)"),
        Setting("client_id", str, "", "OAuth client id, also the login cookie's name (JUPYTERHUB_CLIENT_ID)"),
        Setting("oauth_callback_url", str, "", "OAuth redirect URI (JUPYTERHUB_OAUTH_CALLBACK_URL)"),
        Setting("access_scopes", list, [], "Scopes of which a visitor needs one (JUPYTERHUB_OAUTH_ACCESS_SCOPES; "
                "empty: access to this server or to all of its user's)"),
        Setting("activity_url", str, "", "Where activity is reported (JUPYTERHUB_ACTIVITY_URL; empty: never)"),
        Setting("activity_interval", int, 300, "Seconds between activity reports (JUPYTERHUB_ACTIVITY_INTERVAL)",
                minimum=0),
        Setting("auth_cache_seconds", int, 60, "How long the hub's answer about a token is reused; "
                "a revoked token works that long", minimum=0),
        Setting("cookie_secure", bool, False, "Mark cookies Secure (set when the hub's public URL is https)"),
        Setting("cookie_host_prefix", bool, False, "__Host- cookie names, path /, always Secure "
                "(JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED)"),
        Setting("cookie_options", dict, {}, "tornado set_cookie options for the hub's cookies, e.g. "
                '{"samesite": "None", "secure": true} (JUPYTERHUB_COOKIE_OPTIONS)'),
    ]


@hookimpl
def carme_extra_settings(environ: Mapping[str, str]) -> dict[str, Any] | None:
    return settings_from_environ(environ)


@hookimpl
def carme_register_cli_commands() -> list[Command]:
    return [COMMAND]


@hookimpl
def carme_register_routes(server: Server) -> list[BaseRoute]:
    if not _active(server):
        return []
    return oauth.routes(oauth.callback_path(server.settings["hub.oauth_callback_url"], server.settings["base_url"]))


@hookimpl
def carme_register_public_paths(server: Server) -> list[str]:
    if not _active(server):
        return []
    return ["/" + OAUTH_LOGIN, oauth.callback_path(server.settings["hub.oauth_callback_url"],
                                                   server.settings["base_url"])]


@hookimpl
def carme_register_middleware(server: Server) -> list[Middleware]:
    if not _active(server):
        return []
    return [Middleware(HubVersionMiddleware, server=server), Middleware(HubLogoutMiddleware, server=server)]


@hookimpl
async def carme_startup(server: Server) -> None:
    if not _active(server):
        return
    hub = HubService(server)
    await hub.client.wait_for_hub()
    server.services["hub"] = hub
    reporter = ActivityReporter(server, hub)
    server.services["hub.activity"] = reporter
    reporter.start()


@hookimpl
async def carme_shutdown(server: Server) -> None:
    reporter = server.services.get("hub.activity")
    if reporter is not None:
        await reporter.stop()
    hub = server.services.get("hub")
    if hub is not None:
        await hub.client.close()


@hookimpl
async def carme_user_from_connection(server: Server, connection: HTTPConnection) -> AuthResult | None:
    hub: HubService | None = server.services.get("hub")
    return await hub.identify(connection) if hub is not None else None


@hookimpl
def carme_permission(server: Server, user: User, action: str, resource: str, path: str | None) -> bool | None:
    # Under a hub only its users get in, and only those whose scopes grant this server; the
    # action does not matter (jupyterhub-singleuser's authorizer ignores it too).
    hub: HubService | None = server.services.get("hub")
    if hub is None:
        return None
    return None if hub.grants(user) else False


@hookimpl
def carme_lab_extra_page_config(server: Server, request: Request, page_config: dict[str, Any]) -> dict[str, Any] | None:
    hub: HubService | None = server.services.get("hub")
    if hub is None:
        return None
    visitor = request.scope.get("user")
    return {
        # @jupyterlab/hub-extension's menu (Hub Control Panel, Log Out) reads these.
        "hubPrefix": hub.hub_prefix,
        "hubHost": hub.host,
        "hubUser": visitor.username if isinstance(visitor, HubUser) else hub.user,
        "hubServerUser": hub.user,
        "hubServerName": hub.server_name,
        "shareUrl": hub.hub_prefix + "user-redirect",
        # The visitor's own hub token: JupyterLab sends it as Authorization on every request.
        "token": visitor.token if isinstance(visitor, HubUser) else "",
        # The hub starts and stops this server.
        "quitButton": False,
    }
