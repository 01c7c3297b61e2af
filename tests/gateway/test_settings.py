"""The gateway settings as jupyter_server's GatewayClient has them: timeout coupling, headers, checks."""

from __future__ import annotations

from typing import Any

import pytest

from carme.config import ConfigError
from carme_gateway.settings import GatewayConfig, declared

DEFAULTS = {f"gateway.{setting.name}": setting.default for setting in declared()}


def config(**values: Any) -> GatewayConfig:
    settings = {**DEFAULTS, "gateway.url": "http://eg:8888/", **{f"gateway.{k}": v for k, v in values.items()}}
    return GatewayConfig.from_settings(settings, environ={})


def test_the_start_request_outlives_the_launch_and_a_longer_request_timeout_raises_the_launch_timeout() -> None:
    plain = config()
    assert (plain.launch_timeout, plain.request_timeout) == (40.0, 42.0)
    slow_pods = config(launch_timeout=120.0)
    assert slow_pods.request_timeout == 122.0  # launch + pad
    patient = config(request_timeout=300.0)
    assert patient.launch_timeout == 298.0  # the gateway is told it may take that long


def test_urls_token_and_user() -> None:
    c = config(auth_token="s3cret", headers={"X-Team": "a"}, username="alice")
    assert c.url == "http://eg:8888" and c.ws_url == "ws://eg:8888"
    assert c.headers == {"X-Team": "a", "Authorization": "token s3cret"}
    assert c.username == "alice"
    assert config(http_user="bob", http_pwd="pw").default_username == "bob"
    assert config(url="https://eg").ws_url == "wss://eg"


def test_the_kernel_runs_as_the_user_who_started_it_unless_the_settings_say_otherwise() -> None:
    plain = config(http_user="bob")
    assert plain.kernel_username("alice", {}) == "alice"
    assert plain.kernel_username(None, {}) == "bob"  # carme itself, or an anonymous client
    assert plain.kernel_username("alice", {"KERNEL_USERNAME": "dash"}) == "dash"  # carme chose it for this kernel
    assert config(username="svc").kernel_username("alice", {"KERNEL_USERNAME": "dash"}) == "svc"
    assert config(env={"KERNEL_USERNAME": "team"}).kernel_username("alice", {}) == "team"
    from_environment = GatewayConfig.from_settings({**DEFAULTS, "gateway.url": "http://eg"},
                                                   environ={"KERNEL_USERNAME": "spawned"})
    assert from_environment.kernel_username(None, {}) == "spawned"
    assert from_environment.kernel_username("alice", {}) == "alice"


@pytest.mark.parametrize(("values", "named"), [
    ({"url": "eg:8888"}, "gateway.url"),
    ({"ws_url": "http://eg"}, "gateway.ws_url"),
    ({"env": {"PATH": "/x"}}, "KERNEL_"),
])
def test_bad_settings_name_what_is_wrong(values: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        config(**values)
