"""Token, cookie, XSRF, Origin, CORS, Host checks, /login and /logout, through a real uvicorn."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets.sync.client as ws_client
from websockets.exceptions import InvalidStatus

from carme import create_app
from tests.serving import TOKEN, Served

EVENT = {"schema_id": "https://events.jupyter.org/jupyter_server/contents_service/v1", "version": 1,
         "data": {"action": "save", "path": "a.txt"}}
EVIL = "http://evil.example"


@contextlib.contextmanager
def logged_in(served: Served) -> Iterator[httpx.Client]:
    """A browser-like client holding the login cookie (from one ?token= request) and _xsrf."""
    with httpx.Client(base_url=served.url, timeout=30) as client:
        assert client.get("/api/status", params={"token": TOKEN}).status_code == 200
        yield client


def raw_upgrade(served: Served, path: str, host: str) -> str:
    """The status line a websocket handshake with this Host header gets (clients set their own)."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        return sock.recv(4096).decode("latin-1").split("\r\n", 1)[0]


# -- token and cookie -------------------------------------------------------------------------


@pytest.mark.parametrize("header", [f"token {TOKEN}", f"Bearer {TOKEN}", f"TOKEN  {TOKEN}"])
def test_token_header(served: Served, header: str) -> None:
    assert httpx.get(served.url + "/api/status", headers={"Authorization": header}).status_code == 200


@pytest.mark.parametrize("headers", [{}, {"Authorization": "token wrong"}, {"Authorization": f"Basic {TOKEN}"},
                                     {"Authorization": "token"}])
def test_unauthenticated_api_gets_403_json(served: Served, headers: dict[str, str]) -> None:
    for method, path in (("GET", "/api/status"), ("GET", "/api/me"), ("POST", "/api/events"),
                         ("POST", "/api/shutdown"), ("GET", "/api/kernels"), ("GET", "/files/a.txt"),
                         ("GET", "/kernelspecs/python3/logo-64x64.png")):
        # Accept: text/html too: an API path never redirects, it refuses.
        answer = httpx.request(method, served.url + path, headers={**headers, "Accept": "text/html"})
        assert answer.status_code == 403, path
        assert answer.json() == {"message": "Forbidden", "reason": None}


def test_query_token_sets_the_login_cookie(served: Served) -> None:
    with httpx.Client(base_url=served.url) as browser:
        first = browser.get("/api/status", params={"token": TOKEN})
        assert first.status_code == 200
        name = f"username-127-0-0-1-{served.port}"
        set_cookie = [v for v in first.headers.get_list("set-cookie") if v.startswith(name + "=")]
        assert len(set_cookie) == 1
        assert "HttpOnly" in set_cookie[0] and "Path=/;" in set_cookie[0] and "SameSite=Lax" in set_cookie[0]
        # The cookie alone now authenticates.
        assert browser.get("/api/status").status_code == 200
        # A forged cookie does not (its signature's last digit changed, whatever it was).
        signed = browser.cookies[name]
        browser.cookies.set(name, signed[:-1] + ("1" if signed.endswith("0") else "0"))
        assert browser.get("/api/status").status_code == 403


def test_login_cookie_outlives_the_server_but_not_another_secret(serve_app: Any, tmp_path: Path) -> None:
    """The cookie secret is kept in the Jupyter runtime dir (carme_cookie_secret, mode 0600, as
    jupyter_server keeps jupyter_cookie_secret): a server started later on the same file reads
    the cookies the first one set (a restart keeps browsers logged in); a server with another
    secret file (``cookie_secret_file``) refuses them."""
    one = serve_app()
    with logged_in(one) as browser:
        cookie = browser.cookies[f"username-127-0-0-1-{one.port}"]
    later, other = serve_app(), serve_app(settings={"cookie_secret_file": str(tmp_path / "other" / "secret")})
    kept = httpx.get(later.url + "/api/status", cookies={f"username-127-0-0-1-{later.port}": cookie})
    assert kept.status_code == 200
    forged = httpx.get(other.url + "/api/status", cookies={f"username-127-0-0-1-{other.port}": cookie})
    assert forged.status_code == 403
    for secret_file in (Path(os.environ["JUPYTER_RUNTIME_DIR"]) / "carme_cookie_secret", tmp_path / "other" / "secret"):
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        assert len(secret_file.read_bytes()) == 32
    assert [p.name for p in secret_file.parent.iterdir()] == ["secret"]  # no temporary file left behind


def test_generated_token(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    auth = create_app(str(root), extensions=[]).server.auth
    assert auth.token_generated and re.fullmatch(r"[0-9a-f]{48}", auth.token)
    assert create_app(str(root), extensions=[]).server.auth.token != auth.token
    monkeypatch.setenv("JUPYTER_TOKEN", "from-env")
    auth = create_app(str(root), extensions=[]).server.auth
    assert (auth.token, auth.token_generated) == ("from-env", False)


def test_token_file(serve_app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """JUPYTER_TOKEN_FILE: the token is the file's content (trailing newline dropped); it comes
    after JUPYTER_TOKEN and the token setting; a missing file leaves a generated token."""
    token_file = tmp_path / "token"
    token_file.write_text("from-a-file\n")
    monkeypatch.setenv("JUPYTER_TOKEN_FILE", str(token_file))
    served = serve_app(token=None)
    assert httpx.get(served.url + "/api/status", headers={"Authorization": "token from-a-file"}).status_code == 200
    assert httpx.get(served.url + "/api/status", headers={"Authorization": "token from-a"}).status_code == 403
    assert served.app.server.auth.token_generated is False
    monkeypatch.setenv("JUPYTER_TOKEN", "from-env")
    assert serve_app(token=None).app.server.auth.token == "from-env"
    assert serve_app(token="given").app.server.auth.token == "given"
    monkeypatch.delenv("JUPYTER_TOKEN")
    monkeypatch.setenv("JUPYTER_TOKEN_FILE", str(tmp_path / "missing"))
    assert serve_app(token=None).app.server.auth.token_generated is True


# -- XSRF -------------------------------------------------------------------------------------


def test_cookie_authenticated_unsafe_request_needs_xsrf(served: Served) -> None:
    with logged_in(served) as browser:
        refused = browser.post("/api/events", json=EVENT)
        assert refused.status_code == 403
        assert refused.json() == {"message": "'_xsrf' argument missing from POST", "reason": None}
        xsrf = browser.cookies["_xsrf"]
        assert browser.post("/api/events", json=EVENT, headers={"X-XSRFToken": "0" * 32}).status_code == 403
        assert browser.post("/api/events", json=EVENT, headers={"X-XSRFToken": xsrf}).status_code == 204
        assert browser.post("/api/events", json=EVENT, headers={"X-CSRFToken": xsrf}).status_code == 204
        # Safe methods need no XSRF token.
        assert browser.get("/api/me").status_code == 200


def test_token_authenticated_requests_skip_xsrf(client: httpx.Client) -> None:
    assert client.post("/api/events", json=EVENT).status_code == 204


def test_xsrf_check_can_be_disabled(serve_app: Any) -> None:
    served = serve_app(settings={"disable_check_xsrf": True})
    with logged_in(served) as browser:
        assert browser.post("/api/events", json=EVENT).status_code == 204


# -- Origin and CORS --------------------------------------------------------------------------


def test_cross_origin_cookie_request_is_blocked(served: Served) -> None:
    with logged_in(served) as browser:
        blocked = browser.get("/api/me", headers={"Origin": EVIL})
        assert blocked.status_code == 404
        assert blocked.json()["message"] == "Blocking Cross Origin API request"
        assert "access-control-allow-origin" not in blocked.headers
        xsrf = browser.cookies["_xsrf"]
        assert browser.post("/api/events", json=EVENT, headers={"Origin": EVIL, "X-XSRFToken": xsrf}).status_code == 404
        # Same origin is fine.
        same = browser.get("/api/me", headers={"Origin": served.url})
        assert same.status_code == 200


def test_token_request_from_another_origin_is_allowed_and_readable(client: httpx.Client) -> None:
    answer = client.get("/api/me", headers={"Origin": EVIL})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == EVIL


def test_websocket_origin_check(served: Served) -> None:
    url = served.ws_url + "/api/events/subscribe"
    with logged_in(served) as browser:
        cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
    with pytest.raises(InvalidStatus) as refused:
        ws_client.connect(url, additional_headers={"Cookie": cookie}, origin=EVIL)  # type: ignore[arg-type]
    assert refused.value.response.status_code == 403
    with ws_client.connect(url, additional_headers={"Cookie": cookie}, origin=served.url) as ws:  # type: ignore[arg-type]
        ws.ping().wait(10)
    # The token proves the page is allowed, whatever its origin (as jupyter_server).
    with ws_client.connect(url + f"?token={TOKEN}", origin=EVIL) as ws:  # type: ignore[arg-type]
        ws.ping().wait(10)


def test_auth_off_still_blocks_other_origins(serve_app: Any) -> None:
    served = serve_app(auth=False)
    assert httpx.get(served.url + "/api/status").status_code == 200
    # Scripts need no XSRF token when there is no secret to protect...
    assert httpx.post(served.url + "/api/events", json=EVENT).status_code == 204
    # ...but a web page of another site can neither call the API nor open a websocket.
    assert httpx.post(served.url + "/api/events", json=EVENT, headers={"Origin": EVIL}).status_code == 404
    with pytest.raises(InvalidStatus):
        ws_client.connect(served.ws_url + "/api/events/subscribe", origin=EVIL)  # type: ignore[arg-type]
    identity = httpx.get(served.url + "/api/me").json()["identity"]
    assert identity["name"].startswith("Anonymous ")


@pytest.mark.parametrize(("settings", "origin", "allowed"), [
    ({"allow_origin": "https://app.example"}, "https://app.example", "https://app.example"),
    ({"allow_origin": "https://app.example"}, EVIL, None),
    ({"allow_origin": "*"}, EVIL, "*"),
    ({"allow_origin_pat": r"https://[a-z]+\.example\.org"}, "https://lab.example.org", "https://lab.example.org"),
    ({"allow_origin_pat": r"https://[a-z]+\.example\.org"}, "https://lab.example.org.evil.net", None),
])
def test_cors(serve_app: Any, settings: dict[str, Any], origin: str, allowed: str | None) -> None:
    served = serve_app(settings=settings)
    with logged_in(served) as browser:
        answer = browser.get("/api/me", headers={"Origin": origin})
        assert answer.status_code == (200 if allowed else 404)
        assert answer.headers.get("access-control-allow-origin") == allowed
        assert "access-control-allow-credentials" not in answer.headers
    preflight = httpx.options(served.url + "/api/events", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert preflight.status_code == 204
    assert preflight.headers.get("access-control-allow-origin") == allowed
    assert preflight.headers["access-control-allow-methods"] == "GET, PUT, POST, PATCH, DELETE, OPTIONS"
    assert preflight.headers["access-control-allow-headers"] == "accept, content-type, authorization, x-xsrftoken"


def test_cors_credentials(serve_app: Any) -> None:
    served = serve_app(settings={"allow_origin": "https://app.example", "allow_credentials": True})
    with logged_in(served) as browser:
        answer = browser.get("/api/me", headers={"Origin": "https://app.example"})
    assert answer.headers["access-control-allow-credentials"] == "true"
    preflight = httpx.options(served.url + "/api/me", headers={"Origin": "https://app.example"})
    assert preflight.headers["access-control-allow-credentials"] == "true"


# -- Host check (DNS rebinding) ---------------------------------------------------------------


@pytest.mark.parametrize(("host", "status"), [
    ("localhost", 200), ("127.0.0.1", 200), ("127.0.0.1:1234", 200), ("[::1]:1234", 200),
    ("box.lan:8888", 200), ("evil.example", 403), ("evil.example:8888", 403), ("127.0.0.1.evil.example", 403),
])
def test_host_check(serve_app: Any, host: str, status: int) -> None:
    served = serve_app(settings={"allow_remote_access": False, "local_hostnames": ["localhost", "box.lan"]})
    answer = httpx.get(served.url + "/api/status", headers={"Host": host, "Authorization": f"token {TOKEN}"})
    assert answer.status_code == status
    if status == 403:
        assert answer.json()["message"] == f"Host {host!r} is not allowed"


def test_host_check_applies_to_public_paths_and_websockets(serve_app: Any) -> None:
    served = serve_app(settings={"allow_remote_access": False})
    assert httpx.get(served.url + "/api", headers={"Host": "evil.example"}).status_code == 403
    path = f"/api/events/subscribe?token={TOKEN}"
    assert raw_upgrade(served, path, f"127.0.0.1:{served.port}") == "HTTP/1.1 101 Switching Protocols"
    assert raw_upgrade(served, path, "evil.example").startswith("HTTP/1.1 403")


# -- pages: /login, /logout, security headers -------------------------------------------------


def test_browser_page_without_auth_goes_to_login(served: Served) -> None:
    answer = httpx.get(served.url + "/lab/tree/a.ipynb?reset", headers={"Accept": "text/html,*/*"})
    assert answer.status_code == 302
    assert answer.headers["location"] == "/login?next=%2Flab%2Ftree%2Fa.ipynb%3Freset"


def test_login_form_flow(served: Served) -> None:
    with httpx.Client(base_url=served.url) as browser:
        page = browser.get("/login", params={"next": "/api/me"})
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        xsrf = browser.cookies["_xsrf"]
        assert f'name="_xsrf" value="{xsrf}"' in page.text
        assert 'name="next" value="/api/me"' in page.text
        assert 'action="/login"' in page.text and 'name="password"' in page.text

        wrong = browser.post("/login", data={"password": "nope", "_xsrf": xsrf, "next": "/api/me"})
        assert wrong.status_code == 401 and "Invalid token." in wrong.text
        assert 'name="next" value="/api/me"' in wrong.text  # the form still leads back
        assert browser.get("/api/me").status_code == 403

        done = browser.post("/login", data={"password": TOKEN, "_xsrf": xsrf, "next": "/api/me"})
        assert done.status_code == 302 and done.headers["location"] == "/api/me"
        assert browser.get("/api/me").status_code == 200  # logged in by cookie


def test_login_post_needs_the_form_xsrf(served: Served) -> None:
    with httpx.Client(base_url=served.url) as browser:
        browser.get("/login")
        answer = browser.post("/login", data={"password": TOKEN, "_xsrf": "wrong-é"})
        assert answer.status_code == 403 and "expired" in answer.text
        assert f"username-127-0-0-1-{served.port}" not in browser.cookies


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example", "/\\evil.example", "evil",
                                    "javascript:alert(1)", "/ok\r\nSet-Cookie: x=1"])
def test_login_next_never_leaves_the_site(served: Served, target: str) -> None:
    with httpx.Client(base_url=served.url) as browser:
        xsrf = browser.get("/login").cookies["_xsrf"]
        done = browser.post("/login", data={"password": TOKEN, "_xsrf": xsrf, "next": target})
    assert done.status_code == 302
    assert done.headers["location"] == "/"


def test_logout_clears_the_login_cookie(served: Served) -> None:
    with logged_in(served) as browser:
        answer = browser.get("/logout")
        assert answer.status_code == 302 and answer.headers["location"] == "/login"
        assert browser.get("/api/status").status_code == 403


def test_logout_url_is_where_logout_leads(serve_app: Callable[..., Served]) -> None:
    # An embedding product's (or a hub's) own sign-out page.
    served = serve_app(settings={"logout_url": "/hub/logout"})
    with logged_in(served) as browser:
        answer = browser.get("/logout")
        assert answer.status_code == 302 and answer.headers["location"] == "/hub/logout"
        assert browser.get("/api/status").status_code == 403


def test_security_headers(client: httpx.Client, anon: httpx.Client) -> None:
    for answer in (client.get("/api/status"), anon.get("/api"), anon.get("/login")):
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["content-security-policy"].startswith("frame-ancestors 'self'")


# -- /api, /api/me, /api/status ---------------------------------------------------------------


def test_me_identity_shape(client: httpx.Client, served: Served) -> None:
    body = client.get("/api/me").json()
    identity = body["identity"]
    user = served.app.server.auth.anonymous
    assert identity == {"username": user.username, "name": user.name, "display_name": user.display_name,
                        "initials": user.initials, "avatar_url": None, "color": user.color}
    assert re.fullmatch(r"[0-9a-f]{32}", identity["username"])
    assert identity["name"].startswith("Anonymous ") and len(identity["initials"]) == 2
    assert body["permissions"] == {}


def test_status_tracks_activity_but_not_its_own(client: httpx.Client) -> None:
    first = client.get("/api/status").json()["last_activity"]
    assert client.get("/api/status").json()["last_activity"] == first
    client.post("/api/events", json=EVENT)
    assert client.get("/api/status").json()["last_activity"] > first
