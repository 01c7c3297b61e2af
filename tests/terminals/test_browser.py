"""JupyterLab's own terminal on carme, in the Debian Chromium: open a terminal from the launcher,
type a command, see its output; reload, and the terminal is back with its screen."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from typing import Any

from tests.browser import ARTIFACTS, browsing, open_lab
from tests.serving import Served
from tests.terminals.conftest import SHELL


def test_terminal_from_the_launcher(chromium: Any, serve_app: Callable[..., Served]) -> None:
    shutil.rmtree(ARTIFACTS / "terminal", ignore_errors=True)
    served = serve_app(extensions=["lab", "terminals"], settings={"terminals.shell": SHELL})
    with browsing(chromium, served, "/", "terminal") as flow:
        page = flow.page
        # xterm.js draws on a canvas; its screen-reader mode also keeps the rows' text in the DOM.
        saved = flow.api.put("lab/api/settings/@jupyterlab/terminal-extension:plugin",
                             json={"raw": '{"screenReaderMode": true}'})
        assert saved.status_code == 204, saved.text
        open_lab(flow)
        page.locator(".jp-LauncherCard[title='Start a new terminal session']").click()
        screen = page.locator(".jp-Terminal .xterm-accessibility-tree")
        screen.wait_for(state="attached")
        page.locator(".jp-Terminal .xterm-helper-textarea").focus()
        page.keyboard.type("echo answer-$((6*7))")
        page.keyboard.press("Enter")
        screen.filter(has_text=re.compile(r"answer-42")).wait_for()
        flow.shot("typed")
        assert [t["name"] for t in flow.api.get("api/terminals").json()] == ["1"]

        # Reload: JupyterLab reopens the terminal from its workspace and reattaches to the same
        # one, which sends its recent screen back.
        page.reload()
        page.locator(".jp-Terminal .xterm-accessibility-tree").filter(has_text=re.compile(r"answer-42")).wait_for()
        flow.shot("reloaded")
        assert [t["name"] for t in flow.api.get("api/terminals").json()] == ["1"]
