"""The page client's kernel connection indicator: connected while the kernel is there,
reconnecting (and back, widgets live) when the websocket drops, dead at once when the kernel is
shut down (carme's relay sends the final "dead" status before it closes the websocket), dead
when the page names a kernel the server does not know."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.browser import browsing
from tests.conftest import TOKEN
from tests.dashboards.client_site import PAGE_PATH, ClientSite, StreamedPage, parts, run, section, widget
from tests.serving import Served

INDICATOR = "#carme-kernel-status"


def kernel_model_404(kernel_id: str) -> tuple[str, str]:
    # (services adds a cache-busting query to the GET)
    return (rf"^404 GET .*/dashboards/api/kernels/{kernel_id}(\?\d+)?$|Failed to load resource: .* 404",
            "the client asks for the model of a kernel the server does not have")


def test_the_indicator_goes_dead_when_the_kernel_is_shut_down(chromium: Any,
                                                              client_site: tuple[Served, StreamedPage]) -> None:
    served, page = client_site
    page.parts = list(parts(section(0, "<p>no widgets</p>"), "<div id='carme-finished' data-status='ok'></div>"))
    sockets: list[str] = []
    with browsing(chromium, served, "/", "dashboard-client-kernel") as flow:
        flow.page.on("websocket", lambda ws: sockets.append(ws.url))
        flow.page.goto(served.url + PAGE_PATH)
        flow.page.locator(f"{INDICATOR}[data-state='connected']").wait_for()
        assert flow.page.locator(INDICATOR).get_attribute("title") == "Kernel connected"

        with httpx.Client(base_url=served.url, headers={"Authorization": f"token {TOKEN}"}) as http:
            assert http.delete(f"/api/kernels/{page.kernel_id}").status_code == 204
        flow.page.locator(f"{INDICATOR}[data-state='dead']").wait_for()
        assert flow.page.locator(INDICATOR).inner_text() == "Kernel disconnected"
        flow.shot("dead")
    # A dead kernel is not reconnected to.
    assert len(sockets) == 1, sockets


def test_an_unknown_kernel_is_dead_from_the_start(chromium: Any, client_site: tuple[Served, StreamedPage]) -> None:
    served, page = client_site
    page.kernel_id = str(uuid.uuid4())
    page.parts = list(parts(section(0, "<p>no kernel</p>")))
    expected = [kernel_model_404(page.kernel_id),
                ("carme dashboard: no kernel connection", "the client says why the page stays static")]
    with browsing(chromium, served, "/", "dashboard-client-kernel", expected=expected) as flow:
        messages: list[str] = []
        flow.page.on("console", lambda m: messages.append(m.text))
        flow.page.goto(served.url + PAGE_PATH)
        flow.page.locator(f"{INDICATOR}[data-state='dead']").wait_for()
    assert any("does not know the kernel" in text for text in messages), messages


# Every state the indicator takes, in order (recorded in the page: some last only milliseconds).
RECORD_STATES = """() => {
  const element = document.getElementById('carme-kernel-status');
  window.carmeStates = [element.dataset.state];
  new MutationObserver(() => window.carmeStates.push(element.dataset.state))
    .observe(element, { attributes: true, attributeFilter: ['data-state'] });
}"""


def test_a_dropped_websocket_reconnects_and_the_widgets_stay_live(chromium: Any,
                                                                  client_site: tuple[Served, StreamedPage]) -> None:
    served, page = client_site
    slider_id = run(served, page.kernel_id, "import ipywidgets as w\ns = w.IntSlider(value=3)\nprint(s.model_id)").strip()
    page.parts = list(parts(section(0, widget(slider_id, "IntSlider(value=3)")),
                            "<div id='carme-finished' data-status='ok'></div>"))
    with browsing(chromium, served, "/", "dashboard-client-reconnect") as flow:
        flow.page.goto(served.url + PAGE_PATH)
        readout = flow.page.locator(f".carme-widget[data-model-id='{slider_id}'] .widget-readout")
        readout.filter(has_text="3").wait_for()
        flow.page.locator(f"{INDICATOR}[data-state='connected']").wait_for()
        flow.page.evaluate(RECORD_STATES)

        site: ClientSite = served.app
        assert site.drop_websockets() == 1
        flow.page.wait_for_function("window.carmeStates.length >= 3 && window.carmeStates.at(-1) === 'connected'")
        assert flow.page.evaluate("window.carmeStates") == ["connected", "reconnecting", "connected"]

        # The kernel still hears the page and the page the kernel, over the new websocket.
        run(served, page.kernel_id, "s.value = 9")
        readout.filter(has_text="9").wait_for()
