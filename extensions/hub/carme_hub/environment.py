"""The spawner's ``JUPYTERHUB_*`` environment as carme settings (what jupyterhub-singleuser reads).

Only :func:`settings_from_environ` looks at the environment; everything else reads the resulting
settings (``hub.*`` and the core's ``base_url``, ``ip``, ``port`` ...), so a config file or
create_app can set them too. The API token is the exception: a secret, it is read from the
environment when the hub service starts and never becomes a setting (``carme config`` prints those).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from carme.config import ConfigError

from .cookies import check_options

TOKEN_VARIABLES = ("JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN")  # the second is the old name
OAUTH_LOGIN = "oauth_login"  # app-relative route that starts the hub's OAuth flow


def api_token(environ: Mapping[str, str] | None = None) -> str:
    """The server's own hub API token (its OAuth client secret too); empty when unset."""
    env = os.environ if environ is None else environ
    return next((env[name] for name in TOKEN_VARIABLES if env.get(name)), "")


def default_access_scopes(user: str, server_name: str) -> list[str]:
    """What jupyterhub-singleuser accepts when the hub names no scopes: this server, or the user's."""
    return [f"access:servers!server={user}/{server_name}", f"access:servers!user={user}"]


def _prefix(path: str) -> str:
    return "/" + path.strip("/") + "/" if path.strip("/") else "/"


def settings_from_environ(environ: Mapping[str, str]) -> dict[str, Any] | None:
    """Settings for a server the hub spawned, or None when ``JUPYTERHUB_API_URL`` is not set.

    Raises :class:`carme.config.ConfigError` naming the variable that is malformed.
    """
    api_url = environ.get("JUPYTERHUB_API_URL", "")
    if not api_url:
        return None
    user = environ.get("JUPYTERHUB_USER", "")
    server_name = environ.get("JUPYTERHUB_SERVER_NAME", "")
    prefix = _prefix(environ.get("JUPYTERHUB_SERVICE_PREFIX", f"/user/{user}/"))
    hub_prefix = _prefix(environ.get("JUPYTERHUB_BASE_URL", "/")) + "hub/"
    settings: dict[str, Any] = {
        "base_url": prefix,
        "open_browser": False,
        # The port is the one the hub chose and will probe: another one would never be found.
        "port_retries": 0,
        # Every request is the hub's to vouch for (cookies and tokens are bound to the hub's
        # names), and behind the proxy the Host is the hub's public name, not a local one.
        "allow_remote_access": True,
        "login_url": prefix + OAUTH_LOGIN,
        "logout_url": environ.get("JUPYTERHUB_HOST", "") + hub_prefix + "logout",
        # Over config files: a user's own config cannot open the server to everyone.
        "auth_enabled": True,
        "hub.api_url": api_url.rstrip("/"),
        "hub.hub_prefix": hub_prefix,
        "hub.host": environ.get("JUPYTERHUB_HOST", ""),
        "hub.user": user,
        "hub.server_name": server_name,
        "hub.client_id": environ.get("JUPYTERHUB_CLIENT_ID", f"jupyterhub-user-{user}"),
        "hub.oauth_callback_url": environ.get("JUPYTERHUB_OAUTH_CALLBACK_URL", prefix + "oauth_callback"),
        "hub.activity_url": environ.get("JUPYTERHUB_ACTIVITY_URL", ""),
        "hub.cookie_secure": any(environ.get(name, "").startswith("https:") for name in
                                 ("JUPYTERHUB_PUBLIC_URL", "JUPYTERHUB_PUBLIC_HUB_URL", "JUPYTERHUB_SERVICE_URL")),
    }
    if environ.get("JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED", "").lower() not in ("", "0", "false", "no"):
        settings["hub.cookie_host_prefix"] = True
    if environ.get("JUPYTERHUB_COOKIE_OPTIONS"):
        raw = environ["JUPYTERHUB_COOKIE_OPTIONS"]
        try:
            settings["hub.cookie_options"] = check_options(json.loads(raw), "JUPYTERHUB_COOKIE_OPTIONS")
        except ValueError as exc:  # json's errors are ValueErrors too
            message = str(exc) if str(exc).startswith("JUPYTERHUB_") else f"JUPYTERHUB_COOKIE_OPTIONS {raw!r} is not JSON"
            raise ConfigError(message) from None
    service_url = environ.get("JUPYTERHUB_SERVICE_URL")
    if service_url:
        bound = urlparse(service_url)
        try:
            port = bound.port
        except ValueError:
            port = None
        if port is None:
            raise ConfigError(f"JUPYTERHUB_SERVICE_URL {service_url!r} names no port to listen on")
        settings["ip"] = bound.hostname or "0.0.0.0"  # an empty host means every interface
        settings["port"] = port
    scopes = environ.get("JUPYTERHUB_OAUTH_ACCESS_SCOPES") or environ.get("JUPYTERHUB_OAUTH_SCOPES")
    if scopes:
        try:
            parsed = json.loads(scopes)
        except ValueError:
            parsed = None
        if not isinstance(parsed, list) or not all(isinstance(s, str) for s in parsed):
            raise ConfigError(f"JUPYTERHUB_OAUTH_ACCESS_SCOPES {scopes!r} is not a JSON list of scopes")
        settings["hub.access_scopes"] = parsed
    if environ.get("JUPYTERHUB_ACTIVITY_INTERVAL"):
        try:
            # jupyterhub-singleuser reads any value <= 0 as "no reports"; hub.activity_interval says 0.
            settings["hub.activity_interval"] = max(0, int(environ["JUPYTERHUB_ACTIVITY_INTERVAL"]))
        except ValueError:
            raise ConfigError(f"JUPYTERHUB_ACTIVITY_INTERVAL {environ['JUPYTERHUB_ACTIVITY_INTERVAL']!r} "
                              "is not a number of seconds") from None
    # Internal SSL (the hub's internal_ssl): serve HTTPS with the hub's certificate for this
    # server, ask every client (proxy, hub) for one the hub's CA signed, and show it to the hub.
    for variable, key in (("JUPYTERHUB_SSL_CERTFILE", "certfile"), ("JUPYTERHUB_SSL_KEYFILE", "keyfile"),
                          ("JUPYTERHUB_SSL_CLIENT_CA", "client_ca")):
        if environ.get(variable):
            settings[key] = environ[variable]
    if environ.get("JUPYTERHUB_ROOT_DIR"):
        settings["root_dir"] = os.path.expanduser(environ["JUPYTERHUB_ROOT_DIR"])
    if environ.get("JUPYTERHUB_DEFAULT_URL"):
        settings["default_url"] = environ["JUPYTERHUB_DEFAULT_URL"]
    return settings
