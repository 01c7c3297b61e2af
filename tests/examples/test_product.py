"""The example product (examples/product): its own sign-in, carme under /notebooks through the
carme_user_from_connection hook, carme's lifespan inside the product's. Through a real uvicorn."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets.sync.client as ws_client
from websockets.exceptions import InvalidStatus

from examples.product.app import SESSION_COOKIE, create_product
from tests.serving import Served, serve

EVENT = {"schema_id": "https://events.jupyter.org/jupyter_server/contents_service/v1", "version": 1,
         "data": {"action": "save", "path": "report.ipynb"}}


@pytest.fixture
def product(root: Path) -> Iterator[Served]:
    with serve(create_product(root)) as served:
        yield served


@contextlib.contextmanager
def sign_in(served: Served, username: str = "ada") -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=30) as browser:
        answer = browser.post("/signin", data={"username": username, "password": username[::-1], "next": "/"})
        assert answer.status_code == 302
        yield browser


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
