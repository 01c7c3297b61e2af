"""The dashboard page's client on its own, in Chromium: a page that follows the contract, streamed
in parts by a test-only site in front of a real carme and a real ipykernel. Widgets made before
the page connects come from the kernel's state, a widget made after it from its comm_open; the
views render while the page is still streaming; the slider drives an observer in the kernel; the
Output widget renders through rendermime; math is typeset by the bundled KaTeX; nothing is
requested from any other origin. A widget whose request never ends (its kernel died) is shown too."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.browser import browsing
from tests.dashboards.client_site import (PAGE_PATH, Part, StreamedPage, off_origin, parts, progress, run, section,
                                          widget)
from tests.kernels.wsclient import Client
from tests.serving import Served

SETUP = """
import ipywidgets as w
slider = w.IntSlider(value=7, description='n')
square = w.HTML(value='square=49')
out = w.Output()
out.append_stdout('out-hello\\n')
def on_value(change):
    square.value = f'square={change.new ** 2}'
    with out:
        print(f'value={change.new}')
slider.observe(on_value, 'value')
print(slider.model_id, square.model_id, out.model_id)
"""
LATE = "late = w.Label(value='late-label')\nprint(late.model_id)"


def test_widgets_math_and_output_render_as_the_page_streams(chromium: Any,
                                                            client_site: tuple[Served, StreamedPage]) -> None:
    served, page = client_site
    slider_id, square_id, out_id = run(served, page.kernel_id, SETUP).split()
    seen_slider = threading.Event()
    # The section of a widget made once the page is connected: its id is known only then.
    late = Part("", threading.Event())
    page.parts = [
        *parts(
            section(0, "<h1>Title</h1><p>inline <span class='carme-math'>$x^2$</span> and display</p>"
                       "<div class='carme-math'>$$\\frac{a}{b}$$</div>"),
            section(1, widget(slider_id, "IntSlider(value=7, description='n')")),
            progress(2, 5),
            seen_slider,
            section(2, widget(square_id, "HTML(value='square=49')") + widget(out_id, "Output()")),
            progress(3, 5),
        ),
        late,
        *parts(
            section(4, "<div class='carme-math'>\\int_0^1 x\\,dx</div>"),
            progress(5, 5),
            "<div id='carme-finished' data-status='ok'></div>",
        ),
    ]
    requests: list[str] = []
    with browsing(chromium, served, "/", "dashboard-client") as flow:
        browser_page = flow.page
        browser_page.on("request", lambda r: requests.append(r.url))
        browser_page.on("websocket", lambda ws: requests.append(ws.url))
        # The page never finishes loading until the test lets it: wait for the response only.
        browser_page.goto(served.url + PAGE_PATH, wait_until="commit")

        # The slider, restored from the kernel's widget state, is live while the page still streams.
        slider = browser_page.locator(f".carme-widget[data-model-id='{slider_id}']")
        slider.locator(".widget-slider .widget-readout").filter(has_text=re.compile(r"^7$")).wait_for()
        assert browser_page.evaluate("document.readyState") == "loading"
        assert slider.get_attribute("data-carme-widget") == "rendered"
        assert not slider.locator(".carme-widget-fallback").is_visible()
        browser_page.locator("#carme-kernel-status[data-state='connected']").wait_for()
        # Math of the first cell is typeset without waiting for the kernel or the end of the page.
        assert browser_page.locator("section[data-cell-index='0'] .carme-math .katex").count() == 2
        assert browser_page.locator("section[data-cell-index='0'] div.carme-math .katex-display").count() == 1
        # Only the latest progress marker shows, with its text.
        assert browser_page.locator(".carme-progress:visible").all_inner_texts() == ["cell 2 of 5"]
        flow.shot("slider-while-streaming")
        seen_slider.set()

        square = browser_page.locator(f".carme-widget[data-model-id='{square_id}'] .carme-widget-view")
        square.get_by_text("square=49").wait_for()
        output = browser_page.locator(f".carme-widget[data-model-id='{out_id}'] .carme-widget-view")
        output.locator(".jp-OutputArea-output").get_by_text("out-hello").wait_for()
        assert browser_page.locator(".carme-progress:visible").all_inner_texts() == ["cell 3 of 5"]

        # A widget made now reaches the page by its comm_open, not by the restored state.
        late_id = run(served, page.kernel_id, LATE).strip()
        late.html = section(3, widget(late_id, "Label(value='late-label')"))
        assert late.gate is not None
        late.gate.set()
        browser_page.locator(f".carme-widget[data-model-id='{late_id}'] .carme-widget-view").get_by_text("late-label").wait_for()

        # The end of the page: the last formula (bare LaTeX, display), the run's status.
        browser_page.locator("body[data-carme-run='ok']").wait_for()
        browser_page.locator("section[data-cell-index='4'] .carme-math .katex-display").wait_for()
        assert browser_page.locator(".carme-progress:visible").count() == 0

        # The slider drives the kernel: ArrowRight makes 8, the observer answers 64 and prints
        # into the Output widget, whose new output comes live through rendermime.
        slider.locator(".noUi-handle").focus()
        browser_page.keyboard.press("ArrowRight")
        slider.locator(".widget-readout").filter(has_text=re.compile(r"^8$")).wait_for()
        square.get_by_text("square=64").wait_for()
        output.locator(".jp-OutputArea-output").get_by_text("value=8").wait_for()
        flow.shot("after-arrow")

    assert off_origin(requests, served) == []
    # The kernel was reached only through the contract's services base.
    assert any(url.startswith(f"{served.ws_url}/dashboards/api/kernels/{page.kernel_id}/channels") for url in requests)
    assert not any("/api/kernels" in url and "/dashboards/api/kernels" not in url for url in requests)


HELD = ("import time, ipywidgets as w\nheld = w.Label(value='held-label')\nprint(held.model_id, flush=True)\n"
        "time.sleep(3600)")


def start_held(served: Served, kernel_id: str) -> str:
    """Run HELD without waiting for its end (it has none); the model id it printed."""
    async def go() -> str:
        client = await Client.open(served.ws_url, kernel_id)
        try:
            await client.send("shell", "execute_request", {"code": HELD, "silent": False, "store_history": False,
                                                           "user_expressions": {}, "allow_stdin": False})
            # stdout only: the kernel may write to stderr meanwhile (ipykernel's "No such comm: ..."
            # warning came first in some runs, and was taken for the model id).
            printed = await client.wait_for(
                lambda m: m.msg_type == "stream" and m.content.get("name") == "stdout", timeout=60)
        finally:
            await client.close()
        return str(printed.content["text"]).strip()
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, go()).result()


def test_a_widget_whose_request_never_ends_is_shown_when_its_kernel_dies(
        chromium: Any, client_site: tuple[Served, StreamedPage]) -> None:
    served, page = client_site
    held = Part("", threading.Event())
    page.parts = [Part(section(0, "<h1>Held</h1>")), held]
    with browsing(chromium, served, "/", "dashboard-client-held") as flow:
        browser_page = flow.page
        browser_page.goto(served.url + PAGE_PATH, wait_until="commit")
        browser_page.locator("#carme-kernel-status[data-state='connected']").wait_for()
        model_id = start_held(served, page.kernel_id)  # its comm_open reached the page: it came before the print
        held.html = section(1, widget(model_id, "Label(value='held-label')"))
        assert held.gate is not None
        held.gate.set()
        element = browser_page.locator(f".carme-widget[data-model-id='{model_id}']")
        element.and_(browser_page.locator("[data-carme-widget='waiting']")).wait_for()  # its request is running
        kernel = served.app.carme.server.kernels.get(page.kernel_id)
        assert kernel.pid is not None
        os.kill(kernel.pid, signal.SIGKILL)  # no idle status for that request, ever
        element.locator(".carme-widget-view").get_by_text("held-label").wait_for()
        assert element.get_attribute("data-carme-widget") == "rendered"
        flow.shot("held-widget-after-the-kernel-died")
