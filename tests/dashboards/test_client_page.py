"""What the page client does with the streamed page itself, in Chromium: math is typeset only
once the parser is past it (a formula cut between two network reads comes out whole), an
update of an earlier cell's outputs replaces them, the end of a failed run shows, and the dark
theme's stylesheet and markers are there."""

from __future__ import annotations

import threading
from typing import Any

from tests.browser import browsing
from tests.dashboards.client_site import PAGE_PATH, StreamedPage, parts, progress, section
from tests.serving import Served

TEX = "annotation[encoding='application/x-tex']"


def test_math_waits_for_its_whole_text_and_updates_replace_outputs(chromium: Any,
                                                                   client_site: tuple[Served, StreamedPage]) -> None:
    served, page = client_site
    page.theme = "dark"
    rest_of_formula = threading.Event()
    page.parts = list(parts(
        section(0, "<pre class='carme-source'>display(h, display_id=True)</pre><p>old-output</p>"),
        progress(1, 2),
        "<section class='carme-cell' data-cell-index='1'><p>split <span class='carme-math'>$x^",
        rest_of_formula,
        "2$</span></p></section>\n",
        "<template class='carme-cell-update' data-cell-index='0'>"
        "<p>new-output <span class='carme-math'>$y_1$</span></p></template>\n",
        progress(2, 2),
        "<div id='carme-finished' data-status='error'></div>",
    ))
    with browsing(chromium, served, "/", "dashboard-client-page") as flow:
        flow.page.goto(served.url + PAGE_PATH, wait_until="commit")
        split = flow.page.locator("section[data-cell-index='1'] .carme-math")
        # The parser has handed over half a formula: the client leaves it alone.
        split.filter(has_text="$x^").wait_for()
        flow.page.locator("#carme-kernel-status[data-state='connected']").wait_for()
        assert split.locator(".katex").count() == 0
        # The dark theme: JupyterLab's variables from the client's theme-dark.css, and the body
        # markers widget libraries read.
        assert flow.page.evaluate("getComputedStyle(document.documentElement)"
                                  ".getPropertyValue('--jp-layout-color0').trim()") == "#111"
        assert flow.page.evaluate("[document.body.dataset.jpThemeLight, document.body.dataset.jpThemeName]") == \
            ["false", "JupyterLab Dark"]
        rest_of_formula.set()

        split.locator(TEX).wait_for(state="attached")
        assert split.locator(TEX).text_content() == "x^2"
        flow.page.locator("body[data-carme-run='error']").wait_for()
        assert flow.page.locator("#carme-finished").inner_text() == "Stopped at an error"
        assert flow.page.locator(".carme-progress:visible").count() == 0

        # Cell 0's outputs were replaced by the update, its source kept, the new math typeset.
        first = flow.page.locator("section[data-cell-index='0']")
        first.locator(".carme-math " + TEX).wait_for(state="attached")
        assert first.locator(".carme-math " + TEX).text_content() == "y_1"
        assert "old-output" not in first.inner_text()
        assert first.locator("p").inner_text().startswith("new-output")
        assert first.locator(".carme-source").count() == 1
        assert flow.page.locator("template.carme-cell-update").count() == 0
        flow.shot("updated")
