"""The /login page in a real browser (Debian Chromium through Playwright): a page without
credentials goes to the form, a wrong token is refused, the right one leads back to the page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from carme import create_app, hookimpl
from carme.server import Server
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from tests.serving import TOKEN, Served, serve


class Page:
    name = "page"

    @hookimpl
    def carme_register_routes(self, server: Server) -> list[Route]:
        async def page(request: Request) -> Response:
            return HTMLResponse(f"<h1 id='who'>{request.scope['user'].name}</h1>")

        return [Route("/notebook-page", page)]


@pytest.fixture
def page_server(root: Path) -> Iterator[Served]:
    with serve(create_app(str(root), token=TOKEN, plugins=[Page()], extensions=[])) as served:
        yield served


def test_login_form_in_chromium(chromium: Any, page_server: Served) -> None:
    page = chromium.new_page()
    try:
        page.goto(page_server.url + "/notebook-page?view=1")
        assert page.url == page_server.url + "/login?next=%2Fnotebook-page%3Fview%3D1"
        page.fill("#password", "not-the-token")
        page.click("button[type=submit]")
        assert page.locator("[role=alert]").inner_text() == "Invalid token."
        page.fill("#password", TOKEN)
        page.click("button[type=submit]")
        page.wait_for_url(page_server.url + "/notebook-page?view=1")
        assert page.locator("#who").inner_text().startswith("Anonymous ")
        # The login cookie is HttpOnly: page scripts cannot read it.
        assert "username-" not in page.evaluate("document.cookie")
        page.goto(page_server.url + "/logout")
        assert page.url.startswith(page_server.url + "/login")
        page.goto(page_server.url + "/notebook-page")
        assert page.url.startswith(page_server.url + "/login?next=")
    finally:
        page.close()
