"""The spawner's environment as settings, and the scope check, without a hub running."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.requests import HTTPConnection

from carme import create_app
from carme.config import ConfigError
from carme_hub.activity import ActivityReporter
from carme_hub.environment import settings_from_environ
from carme_hub.scopes import grants_access
from carme_hub.service import HubService

SPAWNED = {
    "JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api",
    "JUPYTERHUB_API_TOKEN": "server-token",
    "JUPYTERHUB_BASE_URL": "/",
    "JUPYTERHUB_SERVICE_PREFIX": "/user/alice/analysis/",
    "JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:41234/user/alice/analysis/",
    "JUPYTERHUB_CLIENT_ID": "jupyterhub-user-alice-analysis",
    "JUPYTERHUB_OAUTH_CALLBACK_URL": "/user/alice/analysis/oauth_callback",
    "JUPYTERHUB_OAUTH_ACCESS_SCOPES": '["access:servers!server=alice/analysis", "access:servers!user=alice"]',
    "JUPYTERHUB_USER": "alice",
    "JUPYTERHUB_SERVER_NAME": "analysis",
    "JUPYTERHUB_ACTIVITY_URL": "http://127.0.0.1:8081/hub/api/users/alice/activity",
    "JUPYTERHUB_DEFAULT_URL": "/lab/tree/start.ipynb",
}


def test_carme_serve_under_a_hub_takes_the_spawners_environment(root: Path, jupyter_env: Path) -> None:
    # The user's own config file loses to the hub's environment (it may not turn auth off).
    (jupyter_env / "config" / "carme_config.json").write_text('{"auth_enabled": false, "port": 9999}')
    settings = create_app(str(root), environ=SPAWNED).server.settings
    assert (settings["base_url"], settings["ip"], settings["port"], settings["port_retries"]) == \
        ("/user/alice/analysis/", "127.0.0.1", 41234, 0)
    assert (settings["login_url"], settings["logout_url"]) == ("/user/alice/analysis/oauth_login", "/hub/logout")
    assert settings["default_url"] == "/lab/tree/start.ipynb"
    assert settings["open_browser"] is False
    assert settings["auth_enabled"] is True
    hub = settings.section("hub")
    assert hub["access_scopes"] == ["access:servers!server=alice/analysis", "access:servers!user=alice"]
    assert (hub["user"], hub["server_name"], hub["client_id"], hub["hub_prefix"]) == \
        ("alice", "analysis", "jupyterhub-user-alice-analysis", "/hub/")
    # Not under a hub: nothing changes.
    assert create_app(str(root), environ={}, config_files=False).server.settings["base_url"] == "/"


@pytest.mark.parametrize(("variable", "value", "named"), [
    ("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1/user/alice/", "names no port"),
    ("JUPYTERHUB_OAUTH_ACCESS_SCOPES", "access:servers", "not a JSON list"),
    ("JUPYTERHUB_ACTIVITY_INTERVAL", "often", "not a number"),
    ("JUPYTERHUB_COOKIE_OPTIONS", "samesite=None", "is not JSON"),
    ("JUPYTERHUB_COOKIE_OPTIONS", '["secure"]', "is not a JSON object of cookie options"),
    ("JUPYTERHUB_COOKIE_OPTIONS", '{"colour": "red"}', "has 'colour', which is not a cookie option"),
    ("JUPYTERHUB_COOKIE_OPTIONS", '{"secure": "yes"}', 'has secure "yes", which is not true or false'),
    ("JUPYTERHUB_COOKIE_OPTIONS", '{"max_age": true}', "has max_age true, which is not an integer"),
    ("JUPYTERHUB_COOKIE_OPTIONS", '{"samesite": "Loose"}', "has samesite 'Loose', which is not one of Strict"),
])
def test_a_malformed_variable_is_named(variable: str, value: str, named: str) -> None:
    with pytest.raises(ConfigError, match=f"{variable} .*{named}"):
        settings_from_environ({**SPAWNED, variable: value})


ACCESS = ["access:servers!server=alice/", "access:servers!user=alice"]


@pytest.mark.parametrize(("held", "granted"), [
    (["access:servers"], True),
    (["access:servers!user=alice"], True),
    (["access:servers!server=alice/"], True),
    (["read:users:name!user=alice", "access:servers!server=alice/"], True),
    (["access:servers!server=alice/other"], False),
    (["access:servers!user=bob"], False),
    (["access:servers!group=class"], False),  # groups need the hub's database
    (["admin:servers"], False),
    ([], False),
])
def test_scopes_grant_access_as_jupyterhub_singleuser(held: list[str], granted: bool) -> None:
    assert grants_access(held, ACCESS) is granted


async def test_host_prefixed_cookies_when_the_hub_uses_them(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "server-token")
    app = create_app(str(root), environ={**SPAWNED, "JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED": "1"}, config_files=False)
    hub = HubService(app.server)
    try:
        header = hub.cookie("jupyterhub-user-alice-analysis", hub.sign("visitor-token"), "/user/alice/analysis/")
        assert header.startswith("__Host-jupyterhub-user-alice-analysis=")
        assert "; Path=/;" in header and header.endswith("; Secure")
        sent = HTTPConnection({"type": "http", "headers": [(b"cookie", header.split(";")[0].encode())]})
        assert hub.read_cookie(sent, "jupyterhub-user-alice-analysis") == "visitor-token"
        # A cookie this server did not sign is nobody's.
        forged = HTTPConnection({"type": "http", "headers": [(b"cookie", b"__Host-jupyterhub-user-alice-analysis=x.y")]})
        assert hub.read_cookie(forged, "jupyterhub-user-alice-analysis") is None
    finally:
        await hub.client.close()


@pytest.mark.parametrize(("interval", "reports"), [("0", False), ("-5", False), ("300", True)])
async def test_an_activity_interval_of_0_turns_reports_off(root: Path, monkeypatch: pytest.MonkeyPatch,
                                                           interval: str, reports: bool) -> None:
    """As jupyterhub-singleuser: 0 means no reports (it used to mean a loop that never slept)."""
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "server-token")
    app = create_app(str(root), environ={**SPAWNED, "JUPYTERHUB_ACTIVITY_INTERVAL": interval}, config_files=False)
    hub = HubService(app.server)
    reporter = ActivityReporter(app.server, hub)
    try:
        reporter.start()
        assert reporter.running is reports
    finally:
        await reporter.stop()
        await hub.client.close()
