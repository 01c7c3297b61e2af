"""Chromium logs in at a real JupyterHub and lands in JupyterLab served by carme."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import httpx
import pytest

from tests.browser import browsing, new_notebook_runs
from tests.hub.hubenv import Hub, auth
from tests.serving import Served

# The first hub test installs JupyterHub and configurable-http-proxy (tests/hub/hubenv.py).
pytestmark = pytest.mark.timeout(300)


def test_login_at_the_hub_lands_in_jupyterlab(hub: Hub, alice: str, chromium: Any) -> None:
    served = Served(hub.url, None, int(urlparse(hub.url).port or 0))
    with browsing(chromium, served, "/user/alice/", "hub-login") as flow:
        flow.page.goto(hub.url + "/hub/login?next=/hub/user/alice/lab")
        flow.page.fill("input[name=username]", "alice")
        flow.page.fill("input[name=password]", "anything")
        flow.page.click("#login_submit")
        flow.page.wait_for_selector(".jp-Launcher")
        assert urlparse(flow.page.url).path == "/user/alice/lab"
        flow.shot("launcher")
        new_notebook_runs(flow)
        # The hub's menu: JupyterLab's hub extension is on when the page config names the hub.
        flow.page.get_by_role("menuitem", name="File").click()
        flow.page.get_by_text("Hub Control Panel").wait_for()
        flow.shot("hub-menu")
        flow.page.keyboard.press("Escape")
        config = flow.page.evaluate("JSON.parse(document.getElementById('jupyter-config-data').textContent)")
        assert (config["hubUser"], config["hubPrefix"], config["hubServerName"]) == ("alice", "/hub/", "")
        assert config["token"] and config["quitButton"] is False
        # The page's token is alice's own hub token (the hub knows whose it is).
        owner = httpx.get(hub.url + "/hub/api/user", headers=auth(config["token"])).json()
        assert owner["name"] == "alice"
