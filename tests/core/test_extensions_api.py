"""/api/extensions: list the installed extensions, enable or disable one at the user level."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from carme import hookimpl
from carme.plugins import installed_extensions
from tests.installing import Site
from tests.serving import Served

HELLO = """
from carme import hookimpl

@hookimpl
def carme_register_settings():
    return []
"""

BROKEN = """
raise ImportError("carme_test_broken needs a library that is not installed")
"""


@pytest.fixture
def installed(site_dir: Site) -> Site:
    site_dir.install("hello", HELLO, dist="carme-hello", version="1.2.3")
    site_dir.install("broken", BROKEN, dist="carme-broken", version="0.0.1")
    return site_dir


def bundled_off() -> dict[str, bool]:
    """The bundled extensions off, so that the test extensions' state comes from the config files."""
    return {name: False for name in installed_extensions() if name not in ("hello", "broken")}


def listing(client: httpx.Client) -> dict[str, dict[str, Any]]:
    answer = client.get("/api/extensions")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["level"] == "user"
    return {entry["name"]: entry for entry in body["extensions"]}


def test_list_says_what_runs_what_is_configured_and_why(installed: Site, serve_app: Callable[..., Served]) -> None:
    served = serve_app(extensions=bundled_off())
    with served.client() as client:
        found = listing(client)
    assert found["hello"] == {"name": "hello", "distribution": "carme-hello", "version": "1.2.3", "running": True,
                              "enabled": True, "source": "default", "error": None, "restart_needed": False}
    broken = found["broken"]
    assert (broken["running"], broken["enabled"]) == (False, True)
    assert broken["error"].startswith("ImportError: carme_test_broken needs a library")
    assert found["watch"]["running"] is False
    assert found["watch"]["source"] == "create_app"


def test_disable_writes_the_user_config_file_and_needs_a_restart(installed: Site, config_levels: dict[str, Path],
                                                                 serve_app: Callable[..., Served]) -> None:
    served = serve_app(extensions=bundled_off())
    user_file = config_levels["user"] / "carme_config.d" / "hello.json"
    with served.client() as client:
        answer = client.patch("/api/extensions/hello", json={"enabled": False})
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"name": "hello", "distribution": "carme-hello", "version": "1.2.3", "running": True,
                                 "enabled": False, "source": str(user_file), "error": None, "restart_needed": True,
                                 "config_file": str(user_file)}
        assert json.loads(user_file.read_text()) == {"extensions": {"hello": False}}
        assert listing(client)["hello"]["restart_needed"] is True
        assert client.patch("/api/extensions/hello", json={"enabled": True}).status_code == 200
        again = listing(client)["hello"]
    assert (again["enabled"], again["restart_needed"]) == (True, False)
    assert json.loads(user_file.read_text()) == {"extensions": {"hello": True}}


def test_a_layer_of_higher_precedence_still_decides(installed: Site, serve_app: Callable[..., Served]) -> None:
    served = serve_app(extensions=bundled_off(), environ={"CARME_EXTENSIONS__HELLO": "true"})
    with served.client() as client:
        answer = client.patch("/api/extensions/hello", json={"enabled": False})
    assert answer.status_code == 200
    assert (answer.json()["enabled"], answer.json()["source"], answer.json()["restart_needed"]) == (
        True, "environment", False)


def test_an_exact_set_of_extensions_stays_exact(installed: Site, serve_app: Callable[..., Served]) -> None:
    served = serve_app(extensions=["hello"])
    with served.client() as client:
        answer = client.patch("/api/extensions/hello", json={"enabled": False})
    assert answer.status_code == 200
    assert (answer.json()["enabled"], answer.json()["source"]) == (True, "create_app(extensions=...)")


@pytest.mark.parametrize(("name", "body", "status", "says"), [
    ("nope", {"enabled": False}, 404, "no installed extension is named 'nope'"),
    ("hello", {"enabled": "no"}, 400, "'enabled' must be true or false"),
    ("hello", {"enabled": False, "level": "system"}, 400, "unknown field(s) level"),
    ("hello", [False], 400, "must be a JSON object"),
])
def test_bad_requests_name_the_problem(installed: Site, serve_app: Callable[..., Served], config_levels: dict[str, Path],
                                       name: str, body: Any, status: int, says: str) -> None:
    served = serve_app(extensions=bundled_off())
    with served.client() as client:
        answer = client.patch(f"/api/extensions/{name}", json=body)
    assert answer.status_code == status
    assert says in answer.json()["message"]
    assert answer.json()["reason"]
    assert not (config_levels["user"] / "carme_config.d").exists()


class ReadOnlyServer:
    """Lets everyone read the server's state, nobody change it."""

    name = "read-only-server"

    @hookimpl
    def carme_permission(self, server: Any, user: Any, action: str, resource: str, path: str | None) -> bool | None:
        return False if (action, resource) == ("write", "server") else None


def test_refused_without_a_token_or_the_permission(installed: Site, serve_app: Callable[..., Served],
                                                   config_levels: dict[str, Path]) -> None:
    served = serve_app(extensions=bundled_off())
    assert httpx.get(served.url + "/api/extensions").status_code == 403
    assert httpx.patch(served.url + "/api/extensions/hello", json={"enabled": False}).status_code == 403
    guarded = serve_app(extensions=bundled_off(), plugins=[ReadOnlyServer()])
    with guarded.client() as client:
        assert listing(client)["hello"]["enabled"] is True
        answer = client.patch("/api/extensions/hello", json={"enabled": False})
    assert answer.status_code == 403
    assert answer.json()["message"].endswith("is not authorized to write on resource: server")
    assert not (config_levels["user"] / "carme_config.d").exists()
