"""The ``gateway`` settings section and the resolved :class:`GatewayConfig`.

Named after jupyter_server's ``GatewayClient`` traits (``--GatewayClient.url`` is
``gateway.url`` here, ``CARME_GATEWAY__URL`` in the environment), with its timeout coupling: the
start request waits at least the kernel launch timeout plus a pad, and a longer request timeout
raises the launch timeout the gateway is told (``KERNEL_LAUNCH_TIMEOUT``).
"""

from __future__ import annotations

import getpass
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from carme.config import ConfigError, Setting

SECTION = "gateway"


def declared() -> list[Setting]:
    """Every setting of the ``gateway`` section."""
    return [
        Setting("url", str, "", "Base URL of the Jupyter Enterprise Gateway (http[s]://host:port); empty: kernels run locally"),
        Setting("ws_url", str, "", "Base websocket URL of the gateway (default: url with http -> ws)"),
        Setting("kernels_endpoint", str, "/api/kernels", "The gateway's kernels API path"),
        Setting("kernelspecs_endpoint", str, "/api/kernelspecs", "The gateway's kernelspecs API path"),
        Setting("kernelspecs_resource_endpoint", str, "/kernelspecs", "The gateway's kernelspec resources path"),
        Setting("auth_token", str, "", "Token sent to the gateway (its EG_AUTH_TOKEN)"),
        Setting("auth_scheme", str, "token", "Scheme before the token in the auth header (EG accepts only 'token')"),
        Setting("auth_header_key", str, "Authorization", "Header that carries the token"),
        Setting("headers", dict, {}, "Extra headers sent on every request and websocket to the gateway"),
        Setting("http_user", str, "", "Basic-auth user name for the gateway (also the default KERNEL_USERNAME)"),
        Setting("http_pwd", str, "", "Basic-auth password for the gateway"),
        Setting("validate_cert", bool, True, "Verify the gateway's TLS certificate"),
        Setting("ca_certs", str, "", "CA bundle (PEM file) to verify the gateway's certificate with"),
        Setting("client_cert", str, "", "Client certificate (PEM file) presented to the gateway"),
        Setting("client_key", str, "", "Key of the client certificate (PEM file)"),
        Setting("connect_timeout", float, 40.0, "Seconds to wait for a connection to the gateway", minimum=0),
        Setting("request_timeout", float, 42.0,
                "Seconds to wait for a gateway answer (a kernel start waits at least launch_timeout + launch_timeout_pad)",
                minimum=0),
        Setting("launch_timeout", float, 40.0,
                "Seconds the gateway may take to launch a kernel (a pod being scheduled); sent as KERNEL_LAUNCH_TIMEOUT",
                minimum=0),
        Setting("launch_timeout_pad", float, 2.0, "Seconds added to launch_timeout for the start request's own timeout",
                minimum=0),
        Setting("username", str, "",
                "KERNEL_USERNAME sent with every start, in place of the user who starts the kernel (for kernels nobody "
                "signed in started: http_user, $KERNEL_USERNAME, else the server's user)"),
        Setting("env", dict, {}, "KERNEL_* variables sent with every kernel start (KERNEL_NAMESPACE, KERNEL_IMAGE, ...)"),
        Setting("allowed_envs", list, [],
                "Names of carme's environment variables sent with a start besides KERNEL_* (the gateway must allow "
                "them in EG_CLIENT_ENVS)"),
        Setting("send_working_dir", bool, True,
                "Send the kernel's working directory as KERNEL_WORKING_DIR (used by the gateway for local kernels, "
                "and for container kernels with EG_MIRROR_WORKING_DIRS)"),
        Setting("request_retries", int, 2, "Retries of a GET or DELETE the gateway did not answer (or 502/503/504)",
                minimum=0),
        Setting("retry_interval", float, 1.0, "Seconds before the first reconnect of a lost kernel websocket (doubled each try)",
                minimum=0),
        Setting("retry_interval_max", float, 30.0, "Longest wait between reconnects of a lost kernel websocket",
                minimum=0),
        Setting("retry_max", int, 5, "Reconnects of a lost kernel websocket before the kernel is reported dead",
                minimum=0),
        Setting("check_interval", float, 30.0,
                "Seconds between checks that a kernel still exists on the gateway (one culled there is reported dead)",
                minimum=0),
    ]


@dataclass(frozen=True)
class GatewayConfig:
    """The resolved settings of one app's gateway client."""

    url: str
    ws_url: str
    kernels_endpoint: str = "/api/kernels"
    kernelspecs_endpoint: str = "/api/kernelspecs"
    kernelspecs_resource_endpoint: str = "/kernelspecs"
    headers: dict[str, str] = field(default_factory=dict)
    basic_auth: tuple[str, str] | None = None
    validate_cert: bool = True
    ca_certs: str = ""
    client_cert: str = ""
    client_key: str = ""
    connect_timeout: float = 40.0
    request_timeout: float = 42.0
    launch_timeout: float = 40.0
    username: str = ""  # the setting: every kernel runs as this user
    default_username: str = ""  # for kernels no signed-in user started, and the kernelspec list
    env: dict[str, str] = field(default_factory=dict)
    allowed_envs: tuple[str, ...] = ()
    send_working_dir: bool = True
    request_retries: int = 2
    retry_interval: float = 1.0
    retry_interval_max: float = 30.0
    retry_max: int = 5
    check_interval: float = 30.0

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> GatewayConfig:
        """The config of ``settings`` (the app's); :class:`ConfigError` names a bad value."""
        environ = os.environ if environ is None else environ
        s = {key[len(SECTION) + 1:]: value for key, value in settings.items() if key.startswith(SECTION + ".")}
        url = s["url"].rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"gateway.url must start with http:// or https://, not {s['url']!r}")
        ws_url = (s["ws_url"] or "ws" + url[len("http"):]).rstrip("/")
        if not ws_url.startswith(("ws://", "wss://")):
            raise ConfigError(f"gateway.ws_url must start with ws:// or wss://, not {s['ws_url']!r}")
        headers = {str(k): str(v) for k, v in s["headers"].items()}
        if s["auth_token"]:
            headers[s["auth_header_key"]] = f"{s['auth_scheme']} {s['auth_token']}".strip()
        env = {str(k): str(v) for k, v in s["env"].items()}
        bad = sorted(k for k in env if not k.startswith("KERNEL_"))
        if bad:
            raise ConfigError(f"gateway.env may only hold KERNEL_* variables (the gateway drops others): {bad}")
        # jupyter_server's coupling: the start request outlives the launch; a longer request
        # timeout lets the gateway take longer too.
        pad = s["launch_timeout_pad"]
        launch_timeout = max(s["launch_timeout"], s["request_timeout"] - pad)
        request_timeout = max(s["request_timeout"], launch_timeout + pad)
        # jupyter_server's order for the server's own user: http_user, then $KERNEL_USERNAME.
        default_username = s["username"] or s["http_user"] or environ.get("KERNEL_USERNAME") or getpass.getuser()
        return cls(
            url=url, ws_url=ws_url, kernels_endpoint=s["kernels_endpoint"], kernelspecs_endpoint=s["kernelspecs_endpoint"],
            kernelspecs_resource_endpoint=s["kernelspecs_resource_endpoint"], headers=headers,
            basic_auth=(s["http_user"], s["http_pwd"]) if s["http_user"] else None,
            validate_cert=s["validate_cert"], ca_certs=s["ca_certs"], client_cert=s["client_cert"],
            client_key=s["client_key"], connect_timeout=s["connect_timeout"], request_timeout=request_timeout,
            launch_timeout=launch_timeout, username=s["username"], default_username=default_username, env=env,
            allowed_envs=tuple(str(name) for name in s["allowed_envs"]), send_working_dir=s["send_working_dir"],
            request_retries=max(0, min(s["request_retries"], 10)), retry_interval=s["retry_interval"],
            retry_interval_max=s["retry_interval_max"], retry_max=max(0, s["retry_max"]),
            check_interval=s["check_interval"],
        )

    def kernel_username(self, started_by: str | None, kernel_env: Mapping[str, str]) -> str:
        """``KERNEL_USERNAME`` of a kernel ``started_by`` a signed-in user (None: carme itself or
        an anonymous client): the settings (``username``, then ``env``) override, then what carme
        gave the kernel itself, then that user, then :attr:`default_username`."""
        return (self.username or self.env.get("KERNEL_USERNAME") or kernel_env.get("KERNEL_USERNAME")
                or started_by or self.default_username)

    def ssl_context(self) -> ssl.SSLContext | bool:
        """What httpx's ``verify`` and the websocket's ``ssl`` take: a context when certificates
        are configured, else whether to verify."""
        if not (self.ca_certs or self.client_cert) and self.validate_cert:
            return True
        context = ssl.create_default_context(cafile=self.ca_certs or None)
        if self.client_cert:
            context.load_cert_chain(self.client_cert, self.client_key or None)
        if not self.validate_cert:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context
