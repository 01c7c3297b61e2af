"""The example product (examples/product): its own sign-in, carme under /notebooks through the
carme_user_from_connection hook, carme's lifespan inside the product's. Through a real uvicorn."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets.sync.client as ws_client
from websockets.exceptions import InvalidStatus

from examples.product.app import SESSION_COOKIE, create_product
from tests.examples.accounts import sign_in
from tests.serving import Served, serve

EVENT = {"schema_id": "https://events.jupyter.org/jupyter_server/contents_service/v1", "version": 1,
         "data": {"action": "save", "path": "report.ipynb"}}


@pytest.fixture
def product(root: Path) -> Iterator[Served]:
    with serve(create_product(root)) as served:
        yield served


def test_not_signed_in(product: Served) -> None:
    assert httpx.get(product.url + "/notebooks/api/me").status_code == 403
    page = httpx.get(product.url + "/notebooks/lab?reset", headers={"Accept": "text/html"})
    assert page.status_code == 302
    # Sent to the product's own sign-in page, with the way back.
    assert page.headers["location"] == "/signin?next=%2Fnotebooks%2Flab%3Freset"
    with pytest.raises(InvalidStatus):
        ws_client.connect(product.ws_url + "/notebooks/api/events/subscribe")


def test_wrong_password(product: Served) -> None:
    answer = httpx.post(product.url + "/signin", data={"username": "ada", "password": "lovelace"})
    assert answer.status_code == 401
    assert SESSION_COOKIE not in answer.cookies


def test_signed_in_user_is_carmes_user(product: Served) -> None:
    with sign_in(product, "grace") as browser:
        identity = browser.get("/notebooks/api/me").json()["identity"]
        assert (identity["username"], identity["display_name"], identity["initials"]) == ("grace", "Grace Hopper", "GH")
        assert "Grace Hopper" in browser.get("/").text
        # The sign-in goes back where carme sent the browser.
        back = browser.post("/signin", data={"username": "grace", "password": "ecarg", "next": "/notebooks/lab?reset"})
        assert back.headers["location"] == "/notebooks/lab?reset"


def test_session_cookie_is_ambient_so_xsrf_applies(product: Served) -> None:
    with sign_in(product) as browser:
        first = browser.get("/notebooks/api/me")
        # carme sets its XSRF cookie for its own mount path only.
        assert [c for c in first.headers.get_list("set-cookie") if c.startswith("_xsrf=")][0].endswith(
            "; Path=/notebooks/; SameSite=Lax")
        assert browser.post("/notebooks/api/events", json=EVENT).status_code == 403
        xsrf = browser.cookies["_xsrf"]
        assert browser.post("/notebooks/api/events", json=EVENT, headers={"X-XSRFToken": xsrf}).status_code == 204


def test_events_websocket_under_the_mount(product: Served) -> None:
    with sign_in(product) as browser:
        cookie = f"{SESSION_COOKIE}={browser.cookies[SESSION_COOKIE]}"
        xsrf = browser.get("/notebooks/api/me").cookies["_xsrf"]
        with ws_client.connect(product.ws_url + "/notebooks/api/events/subscribe", origin=product.url,  # type: ignore[arg-type]
                               additional_headers={"Cookie": cookie}) as ws:
            assert browser.post("/notebooks/api/events", json=EVENT, headers={"X-XSRFToken": xsrf}).status_code == 204
            assert json.loads(ws.recv(timeout=10))["path"] == "report.ipynb"


def test_sign_out(product: Served) -> None:
    with sign_in(product) as browser:
        browser.post("/signout")
        assert browser.get("/notebooks/api/me").status_code == 403


def test_product_lifespan_runs_carmes(root: Path) -> None:
    app = create_product(root)
    notebooks = next(route.app for route in app.routes if getattr(route, "path", "") == "/notebooks")
    with serve(app):
        assert notebooks.server.running  # started by the product's lifespan, before any request
    assert not notebooks.server.running


# -- roles: the permission matrix of a viewer (alan), an editor (grace) and an admin (ada) ------

NOTEBOOK = {"cells": [{"cell_type": "code", "execution_count": None, "id": "c1", "metadata": {}, "outputs": [],
                       "source": "x = 1"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
ROLE_OF = {"alan": "viewer", "grace": "editor", "ada": "admin"}
# (what, method, path, body, action, resource, who may); each user writes a file of its own name.
MATRIX = [
    ("read a notebook", "GET", "/api/contents/report.ipynb", None, "read", "contents", {"alan", "grace", "ada"}),
    ("write a file", "PUT", "/api/contents/{user}.txt", {"type": "file", "format": "text", "content": "hi"},
     "write", "contents", {"grace", "ada"}),
    ("make a folder", "POST", "/api/contents", {"type": "directory"}, "write", "contents", {"grace", "ada"}),
    ("list kernels", "GET", "/api/kernels", None, "read", "kernels", {"alan", "grace", "ada"}),
    ("start a kernel", "POST", "/api/kernels", {"name": "nope"}, "write", "kernels", {"grace", "ada"}),
    ("list kernelspecs", "GET", "/api/kernelspecs", None, "read", "kernelspecs", {"alan", "grace", "ada"}),
    ("list sessions", "GET", "/api/sessions", None, "read", "sessions", {"alan", "grace", "ada"}),
    ("start a session", "POST", "/api/sessions", {"path": "x.ipynb", "type": "notebook", "kernel": {"name": "nope"}},
     "write", "sessions", {"grace", "ada"}),
    ("post an event", "POST", "/api/events", EVENT, "write", "events", {"grace", "ada"}),
    ("server status", "GET", "/api/status", None, "read", "server", {"alan", "grace", "ada"}),
    ("shut the server down", "POST", "/api/shutdown", None, "write", "server", {"ada"}),
    ("save lab settings", "PUT", "/lab/api/settings/@jupyterlab/notebook-extension:tracker", {"raw": "{}"},
     "write", "lab", {"grace", "ada"}),
]


@pytest.mark.parametrize("user", sorted(ROLE_OF))
def test_permission_matrix_over_rest(product: Served, root: Path, user: str) -> None:
    (root / "report.ipynb").write_text(json.dumps(NOTEBOOK))
    before = sorted(p.name for p in root.iterdir())
    with sign_in(product, user) as browser:
        browser.headers["X-XSRFToken"] = browser.get("/notebooks/api/me").cookies["_xsrf"]
        for what, method, path, body, action, resource, allowed in MATRIX:
            answer = browser.request(method, "/notebooks" + path.format(user=user), json=body)
            if user in allowed:
                assert answer.status_code != 403, f"{user} ({ROLE_OF[user]}) may {what}: {answer.text}"
            else:
                assert answer.status_code == 403, f"{user} ({ROLE_OF[user]}) may not {what}"
                assert (answer.json()["action"], answer.json()["resource"]) == (action, resource)
        me = browser.get("/notebooks/api/me", params={"permissions": json.dumps(
            {"contents": ["read", "write"], "kernels": ["read", "execute"], "server": ["write"]})}).json()
        granted = {"alan": {"contents": ["read"], "kernels": ["read"], "server": []},
                   "grace": {"contents": ["read", "write"], "kernels": ["read", "execute"], "server": []},
                   "ada": {"contents": ["read", "write"], "kernels": ["read", "execute"], "server": ["write"]}}
        assert me["permissions"] == granted[user]
        assert browser.get("/notebooks/api/contents/report.ipynb").json()["writable"] is (user != "alan")
    if user == "alan":
        assert sorted(p.name for p in root.iterdir()) == before  # nothing on disk changed


@pytest.mark.asyncio(loop_scope="function")
async def test_permission_matrix_over_websockets(product: Served, root: Path) -> None:
    from tests.kernels.wsclient import Client

    (root / "report.ipynb").write_text(json.dumps(NOTEBOOK))
    cookies = {}
    for user in ROLE_OF:
        with sign_in(product, user) as browser:
            cookies[user] = {"Cookie": f"{SESSION_COOKIE}={browser.cookies[SESSION_COOKIE]}"}
            if user == "grace":
                xsrf = browser.get("/notebooks/api/me").cookies["_xsrf"]
                kernel = browser.post("/notebooks/api/kernels", json={"name": "python3"},
                                      headers={"X-XSRFToken": xsrf}).json()["id"]
    ws_base = product.ws_url + "/notebooks"
    editor = await Client.open(ws_base, kernel, headers=cookies["grace"])
    viewer = await Client.open(ws_base, kernel, headers=cookies["alan"])
    admin = await Client.open(ws_base, kernel, headers=cookies["ada"])
    try:
        # The viewer's code never reaches the kernel; the viewer is told why, in the notebook's terms.
        iopub, reply = await viewer.execute("open('viewer-was-here.txt', 'w').write('x')")
        assert (reply.msg_type, reply.content["status"], reply.content["ename"]) == (
            "execute_reply", "error", "PermissionError")
        assert [m.msg_type for m in iopub] == ["status", "error", "status"]
        assert "not run code" in iopub[1].content["evalue"]
        for refused in ("complete_request", "inspect_request"):
            msg_id = await viewer.send("shell", refused, {"code": "os.pa", "cursor_pos": 5, "detail_level": 0})
            _, answer = await viewer.collect(msg_id)
            assert (answer.msg_type, answer.content["status"]) == (refused.replace("request", "reply"), "error")
        # ... while it watches what the editor runs; the editor and the admin run code.
        _, reply = await editor.execute("print('from the editor')")
        assert reply.content["status"] == "ok"
        watched = await viewer.until(lambda m: m.msg_type == "stream")
        assert watched[-1].content["text"] == "from the editor\n"
        _, reply = await admin.execute("y = 2")
        assert reply.content["status"] == "ok"
        assert not (root / "viewer-was-here.txt").exists()
    finally:
        for client in (editor, viewer, admin):
            await client.close()
    # The events websocket is read: everyone may subscribe.
    for user in ROLE_OF:
        with ws_client.connect(product.ws_url + "/notebooks/api/events/subscribe",
                               additional_headers=cookies[user]):
            pass
