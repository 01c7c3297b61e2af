"""carme as the single-user server of a real JupyterHub (with configurable-http-proxy), through
the hub's proxy as users reach it: hub tokens, scopes, the OAuth redirects and their checks."""

from __future__ import annotations

import re
import subprocess
import uuid
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from carme_hub import hubapi
from carme_hub.hubapi import HubClient
from tests.hub.hubenv import CARME, SERVICE_TOKEN, Hub, auth

# The first hub test installs JupyterHub and configurable-http-proxy (tests/hub/hubenv.py).
pytestmark = pytest.mark.timeout(300)


def test_hub_token_works_on_the_rest_api(hub: Hub, alice: str) -> None:
    token = hub.token("alice")
    with httpx.Client(base_url=alice, headers=auth(token), timeout=60) as client:
        status = client.get("api/status")
        assert status.status_code == 200
        assert set(status.json()) == {"started", "last_activity", "kernels", "connections"}
        assert status.headers["x-jupyterhub-version"] == httpx.get(hub.url + "/hub/api").json()["version"]
        assert client.get("api/me").json()["identity"]["username"] == "alice"
        # A token is no ambient credential: no XSRF echo needed for a write.
        created = client.post("api/contents", json={"type": "file", "ext": ".txt"})
        assert created.status_code == 201, created.text
        assert created.json()["path"] in [item["path"] for item in client.get("api/contents").json()["content"]]
    # No credentials, or one the hub does not know: 403 JSON naming why, never a redirect.
    nobody = httpx.get(alice + "api/contents", headers={"Accept": "text/html"})
    assert nobody.status_code == 403 and nobody.json()["message"]
    assert httpx.get(alice + "api/contents", headers=auth("not-a-hub-token")).status_code == 403


def test_other_users_get_403(hub: Hub, alice: str) -> None:
    hub.start_server("bob")
    bob = hub.token("bob")
    refused = httpx.get(alice + "api/contents", headers=auth(bob))
    assert refused.status_code == 403
    assert "bob" in refused.json()["message"]
    assert httpx.get(alice + "lab", headers=auth(bob)).status_code == 403
    assert httpx.get(alice + "api/me", headers=auth(bob)).status_code == 403  # not even who he is
    # bob's own server is his.
    assert httpx.get(hub.url + "/user/bob/api/contents", headers=auth(bob)).status_code == 200


def test_browser_without_cookie_goes_to_the_hub(hub: Hub, alice: str) -> None:
    page = httpx.get(alice + "lab", headers={"Accept": "text/html"})
    assert page.status_code == 302
    login = page.headers["location"]
    assert login.startswith("/user/alice/oauth_login?next=")
    to_hub = httpx.get(hub.url + login)
    assert to_hub.status_code == 302
    authorize = urlparse(to_hub.headers["location"])
    assert authorize.path == "/hub/api/oauth2/authorize"
    query = parse_qs(authorize.query)
    assert query["client_id"] == ["jupyterhub-user-alice"]
    assert query["redirect_uri"] == ["/user/alice/oauth_callback"]
    assert query["code_challenge_method"] == ["S256"]
    state_cookie = to_hub.headers["set-cookie"]
    assert state_cookie.startswith(f"jupyterhub-user-alice-oauth-state-{query['state'][0]}=")
    assert "HttpOnly" in state_cookie and "Path=/user/alice/" in state_cookie
    # The callback checks what it is given.
    callback = alice + "oauth_callback"
    assert httpx.get(callback).status_code == 400
    forged = httpx.get(callback, params={"code": "x", "state": query["state"][0]})  # no state cookie
    assert forged.status_code == 403 and forged.json()["message"].startswith("oauth state does not match")
    assert httpx.get(callback, params={"error": "access_denied"}).status_code == 400
    # Logging out of the server is logging out of the hub, and forgets the visitor's hub token.
    logout = httpx.get(alice + "logout")
    assert (logout.status_code, logout.headers["location"]) == (302, "/hub/logout")
    cleared = [c for c in logout.headers.get_list("set-cookie") if c.startswith("jupyterhub-user-alice=;")]
    assert cleared and "Max-Age=0" in cleared[0] and "Path=/user/alice/" in cleared[0], logout.headers


def start_login(hub: Hub, alice: str, query: str = "next=/user/alice/lab") -> tuple[str, str]:
    """Begin a login at alice's server: the state the hub is sent, and its state cookie."""
    to_hub = httpx.get(f"{alice}oauth_login?{query}")
    assert to_hub.status_code == 302, to_hub.text
    state = parse_qs(urlparse(to_hub.headers["location"]).query)["state"][0]
    return state, to_hub.headers["set-cookie"].split(";", 1)[0]


def test_a_login_code_the_hub_refuses_restarts_the_login_once_then_is_a_403(hub: Hub, alice: str) -> None:
    callback = alice + "oauth_callback"
    state, cookie = start_login(hub, alice)
    # The real hub refuses a code it never issued (as one already used, or expired).
    refused = httpx.get(callback, params={"code": "never-issued", "state": state}, headers={"Cookie": cookie})
    assert refused.status_code == 302, refused.text
    assert refused.headers["location"] == "/user/alice/oauth_login?next=%2Fuser%2Falice%2Flab&again=1"
    assert any(c.startswith(cookie.split("=", 1)[0] + "=;") and "Max-Age=0" in c
               for c in refused.headers.get_list("set-cookie")), refused.headers  # the used state is dropped
    # The login starts again (the hub would send the visitor straight back with a fresh code);
    # refused once more, it is a 403 saying what the hub answered, not another round.
    state, cookie = start_login(hub, alice, urlparse(refused.headers["location"]).query)
    again = httpx.get(callback, params={"code": "never-issued", "state": state}, headers={"Cookie": cookie})
    assert again.status_code == 403, again.text
    body = again.json()
    assert body["reason"] == "OAuth code refused"
    assert body["message"].startswith("The hub refused the login code (400 invalid_grant"), body
    assert body["message"].endswith("; log in again"), body


def test_singleuser_needs_the_hub_environment() -> None:
    done = subprocess.run([CARME, "singleuser"], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})
    assert done.returncode == 2
    assert re.search(r"JUPYTERHUB_SERVICE_URL is not set", done.stderr)


def test_the_hubs_answer_about_a_token_is_reused(hub: Hub, alice: str) -> None:
    token = hub.token("alice")

    def lookups() -> int:
        """The hub's log lines of token lookups by alice's tokens, up to a marker logged after them."""
        marker = uuid.uuid4().hex
        assert hub.api.get("/users/alice", params={"marker": marker}).status_code == 200
        hub.process.wait_for(rf"GET /hub/api/users/alice\?marker={marker}")
        return len(re.findall(r"GET /hub/api/user \(alice@", hub.process.output()))

    before = lookups()
    for _ in range(5):
        assert httpx.get(alice + "api/contents", headers=auth(token)).status_code == 200
    assert lookups() == before + 1  # one question to the hub for five requests


async def test_the_token_cache_stays_bounded(hub: Hub, alice: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Made-up tokens by the thousand within the cache time would otherwise all be kept: past
    the limit the oldest answers go (and are asked for again)."""
    monkeypatch.setattr(hubapi, "CACHE_LIMIT", 3)
    client = HubClient(hub.url + "/hub/api", SERVICE_TOKEN, 60)
    token = hub.token("alice")
    try:
        asked = len(re.findall(r"GET /hub/api/user \(alice@", hub.process.output()))
        identity = await client.identify(token)
        assert identity is not None and identity.name == "alice"
        for number in range(3):
            assert await client.identify(f"made-up-{number}-{uuid.uuid4().hex}") is None
        assert await client.identify(token) is not None
        marker = uuid.uuid4().hex  # the hub's log up to here is complete once this request is in it
        assert hub.api.get("/users/alice", params={"marker": marker}).status_code == 200
        hub.process.wait_for(rf"GET /hub/api/users/alice\?marker={marker}")
        assert len(re.findall(r"GET /hub/api/user \(alice@", hub.process.output())) == asked + 2
    finally:
        await client.close()
