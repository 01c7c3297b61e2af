"""The page client loads a third-party widget library installed as a prebuilt federated
labextension (ipympl's jupyter-matplotlib) the way JupyterLab does: its remote entry is
initialised with the client's share scope and its plugin registers the module; the figure is
drawn from the kernel's image messages. Only what the page needs is fetched, from its origin."""

from __future__ import annotations

from typing import Any

from tests.browser import browsing
from tests.dashboards.client_site import (PAGE_PATH, StreamedPage, federated_extension, off_origin, parts, run,
                                          section, widget)
from tests.serving import Served

FIGURE = """
%matplotlib widget
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(4, 3))
ax.plot([0, 1, 2, 3], [0, 1, 4, 9], color='red', linewidth=6)
print(fig.canvas.model_id)
"""

# Whether the figure's canvas shows the plot: some strongly red pixels (the line is red).
RED_PIXELS = """(element) => {
  let red = 0;
  for (const canvas of element.querySelectorAll('.jupyter-matplotlib-canvas-div canvas')) {
    if (!canvas.width || !canvas.height) continue;
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i] > 200 && data[i + 1] < 80 && data[i + 2] < 80) red++;
    }
  }
  return red;
}"""


def test_a_federated_widget_library_loads_on_demand(chromium: Any,
                                                    client_site: tuple[Served, StreamedPage]) -> None:
    served, page = client_site
    canvas_id = run(served, page.kernel_id, FIGURE).strip()
    page.federated_extensions = [
        # Listed as JupyterLab lists it, but built into the client: never fetched.
        federated_extension("@jupyter-widgets/jupyterlab-manager"),
        federated_extension("jupyter-matplotlib"),
    ]
    page.parts = list(parts(section(0, widget(canvas_id, "Canvas(toolbar=Toolbar(...))")),
                            "<div id='carme-finished' data-status='ok'></div>"))
    requests: list[str] = []
    with browsing(chromium, served, "/", "dashboard-client-libraries") as flow:
        flow.page.on("request", lambda r: requests.append(r.url))
        flow.page.goto(served.url + PAGE_PATH)
        view = flow.page.locator(f".carme-widget[data-model-id='{canvas_id}'] .carme-widget-view")
        view.locator(".jupyter-matplotlib-figure .jupyter-matplotlib-canvas-div canvas").first.wait_for()
        flow.page.wait_for_function(f"(el) => ({RED_PIXELS})(el) > 100", arg=view.element_handle())
        flow.shot("figure")

    assert off_origin(requests, served) == []
    origin = served.url + "/"
    fetched = [url[len(origin):] for url in requests if url.startswith(origin)]
    assert any(url.startswith("dashboards/labextensions/jupyter-matplotlib/static/remoteEntry.") for url in fetched)
    assert not any(url.startswith("dashboards/labextensions/@jupyter-widgets/") for url in fetched)
