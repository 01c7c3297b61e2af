"""A gateway that answers, but not with JSON (a proxy's login page, a URL that is not EG's): a
502 naming the gateway and what was wrong, never a 500. The gateway here is a tiny real app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tests.serving import Served, serve, serve_isolated

from .conftest import FAST


async def login_page(request: Request) -> HTMLResponse:
    return HTMLResponse("<html><body>Sign in to continue</body></html>")


@pytest.fixture(scope="module")
def not_a_gateway() -> Iterator[Served]:
    app = Starlette(routes=[Route("/{path:path}", login_page, methods=["GET", "POST", "DELETE"])])
    with serve(app) as running:
        yield running


def test_an_answer_that_is_not_json_is_a_502_naming_the_gateway(not_a_gateway: Served, tmp_path: Path) -> None:
    settings = {**FAST, "gateway.url": not_a_gateway.url}
    with serve_isolated(tmp_path, extensions=["gateway"], settings=settings) as served, served.client() as http:
        for response in (http.get("/api/kernelspecs"), http.post("/api/kernels", json={"name": "python3"})):
            assert response.status_code == 502, response.text
            body = response.json()
            assert not_a_gateway.url in body["message"] and "not JSON" in body["message"], body
            assert "text/html" in body["message"], body
            assert body["reason"] == "Bad Gateway"
