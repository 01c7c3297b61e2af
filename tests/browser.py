"""Shared pieces of the browser tests (Debian Chromium driven by Playwright): the launch flags,
a JupyterLab page flow that screenshots each step, and the check that no request failed and no
console error appeared beyond EXPECTED. The ``chromium`` and ``lab_server`` fixtures are in
tests/conftest.py.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.serving import TOKEN, Served

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "lab"
TIMEOUT_MS = 30_000

# (pattern on "STATUS METHOD URL" or on the console text, reason it is expected)
EXPECTED: list[tuple[str, str]] = [
    (r"^Comm not found for comm id ", "two pages on one kernel (collaboration): iopub carries the comm messages "
     "of the other page's comms (the widgets control comm), which this page does not know; JupyterLab logs them"),
]


@dataclass
class Problems:
    """Failed requests and console errors seen by the page."""

    items: list[str] = field(default_factory=list)
    expected: Sequence[tuple[str, str]] = ()

    def unexpected(self) -> list[str]:
        patterns = [pattern for pattern, _ in (*EXPECTED, *self.expected)]
        return [item for item in self.items if not any(re.search(pattern, item) for pattern in patterns)]


class Flow:
    """The page plus a step counter that names screenshots."""

    def __init__(self, page: Any, served: Served, prefix: str, shots: Path) -> None:
        self.page = page
        self.served = served
        self.prefix = prefix
        self.shots = shots
        self.count = 0
        self.requests: list[str] = []  # every URL the page asked for, in order
        page.on("request", lambda r: self.requests.append(r.url))
        self.api = httpx.Client(base_url=served.url + prefix, headers={"Authorization": f"token {TOKEN}"},
                                timeout=30)

    def shot(self, name: str) -> None:
        self.count += 1
        self.page.screenshot(path=str(self.shots / f"{self.count:02d}-{name}.png"))

    def wait_kernel(self, state: str) -> None:
        """Wait for the status bar to show the kernel in ``state`` (Idle, Busy, ...)."""
        self.page.locator(".jp-StatusBar-Widget").get_by_text(
            re.compile(rf"Python 3 \(ipykernel\) \| {state}$")).wait_for()

    def cell_output(self, index: int) -> Any:
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").nth(index) \
            .locator(".jp-OutputArea-output")

    def run_in_new_cell(self, code: str) -> None:
        """Type ``code`` into the active (last) cell and run it with Shift+Enter."""
        editor = self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell.jp-mod-active .cm-content")
        editor.click()
        self.page.keyboard.type(code)
        self.page.keyboard.press("Shift+Enter")

    def listed(self, name: str) -> Any:
        """The file browser's entry named ``name``."""
        return self.page.locator(f".jp-DirListing-item[title^='Name: {name}']")

    def toolbar(self, item: str) -> Any:
        return self.page.locator(f".jp-NotebookPanel:not(.lm-mod-hidden) [data-jp-item-name='{item}'] button").first


@contextlib.contextmanager
def browsing(chromium: Any, served: Served, prefix: str, shots: str,
             expected: Sequence[tuple[str, str]] = ()) -> Iterator[Flow]:
    """A fresh browser context on ``served``; on failure a screenshot and the problems seen so
    far; at the end, no failed request or console error beyond EXPECTED and ``expected``
    (this test's own: (pattern, reason) pairs)."""
    (ARTIFACTS / shots).mkdir(parents=True, exist_ok=True)
    problems = Problems(expected=expected)
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("response", lambda r: r.status >= 400 and problems.items.append(f"{r.status} {r.request.method} {r.url}"))
    page.on("console", lambda m: m.type == "error" and problems.items.append(m.text))
    page.on("pageerror", lambda e: problems.items.append(f"page error: {e}"))
    flow = Flow(page, served, prefix, ARTIFACTS / shots)
    try:
        yield flow
    except Exception as exc:
        flow.shot("failure")
        exc.add_note("failed requests and console errors so far:\n" + "\n".join(problems.items))
        raise
    finally:
        flow.api.close()
        context.close()
    assert problems.unexpected() == [], "\n".join(problems.items)


def open_lab(flow: Flow) -> None:
    """Open /lab with the token: the token is dropped from the URL, the launcher shows."""
    flow.page.goto(f"{flow.served.url}{flow.prefix}lab?token={TOKEN}")
    flow.page.wait_for_selector(".jp-Launcher")
    assert "token" not in flow.page.url
    flow.shot("launcher")


def new_notebook_runs(flow: Flow) -> None:
    """A Python notebook from the launcher; 1+1 gives 2."""
    flow.page.locator(".jp-LauncherCard[data-category='Notebook']").first.click()
    flow.page.wait_for_selector(".jp-NotebookPanel")
    flow.wait_kernel("Idle")
    flow.shot("new-notebook")
    flow.run_in_new_cell("1+1")
    flow.cell_output(0).filter(has_text=re.compile(r"^\s*2\s*$")).wait_for()
    flow.shot("ran-1-plus-1")
