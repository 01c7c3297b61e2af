"""OutputRenderer: mime order, escaping, widgets, images, math, ANSI, and no traceback leak."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest

from carme_dashboards.ansi import ansi_to_html, strip_ansi
from carme_dashboards.executor import CellError
from carme_dashboards.render import ERROR_MESSAGE, MIME_ORDER, WIDGET_VIEW, OutputRenderer

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
FULL_BUNDLE: dict[str, Any] = {
    WIDGET_VIEW: {"model_id": "m-1", "version_major": 2, "version_minor": 0},
    "application/javascript": "alert('js')",
    "text/html": "<b>html</b>",
    "text/markdown": "**md**",
    "text/latex": "$x<y$",
    "image/svg+xml": "<svg xmlns='http://www.w3.org/2000/svg'></svg>",
    "image/png": PNG,
    "image/jpeg": PNG,
    "text/plain": "plain <text>",
}


def display(data: dict[str, Any], metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"output_type": "display_data", "data": data, "metadata": metadata or {}}


def only_mime(html: str) -> str:
    (mime,) = re.findall(r'data-mime-type="([^"]+)"', html)
    return mime


def test_the_first_present_type_in_nbconvert_order_is_chosen() -> None:
    renderer = OutputRenderer()
    expected = {WIDGET_VIEW: 'data-model-id="m-1"', "text/html": "<b>html</b>", "text/markdown": "<strong>md</strong>",
                "text/latex": '<div class="carme-math">$x&lt;y$</div>', "image/svg+xml": "data:image/svg+xml;base64,",
                "image/png": f"data:image/png;base64,{PNG}", "image/jpeg": "data:image/jpeg;base64,",
                "text/plain": "<pre>plain &lt;text&gt;</pre>"}
    for i, mime in enumerate(MIME_ORDER):
        bundle = {m: FULL_BUNDLE[m] for m in MIME_ORDER[i:]}
        html = renderer.render_outputs([display(bundle)])
        if mime == "application/javascript":
            assert html == ""  # dropped, not replaced by the next type
            continue
        assert only_mime(html) == mime and expected[mime] in html, (mime, html)


def test_a_widget_view_keeps_its_text_fallback_and_needs_a_model_id() -> None:
    renderer = OutputRenderer()
    html = renderer.render_outputs([display({WIDGET_VIEW: {"model_id": 'a"b'}, "text/plain": "IntSlider(<7>)"})])
    assert ('<div class="carme-widget" data-model-id="a&quot;b"><pre class="carme-widget-fallback">'
            "IntSlider(&lt;7&gt;)</pre></div>") in html
    html = renderer.render_outputs([display({WIDGET_VIEW: {"version_major": 2}, "text/plain": "no model"})])
    assert only_mime(html) == "text/plain"


def test_text_is_escaped_everywhere_but_html_outputs() -> None:
    renderer = OutputRenderer(show_tracebacks=True)
    evil = "<script>alert(1)</script>"
    html = renderer.render_outputs([
        {"output_type": "stream", "name": "stdout", "text": evil},
        {"output_type": "execute_result", "data": {"text/plain": evil}, "metadata": {}, "execution_count": 1},
        {"output_type": "error", "ename": "E", "evalue": evil, "traceback": [evil]},
        display({"text/latex": evil}),
        display({WIDGET_VIEW: {"model_id": "m"}, "text/plain": evil}),
    ])
    assert "<script>" not in html and html.count("&lt;script&gt;") == 5
    assert renderer.render_outputs([display({"text/html": evil})]).count("<script>") == 1


def test_images_get_sizes_from_metadata_and_bad_data_is_refused() -> None:
    renderer = OutputRenderer()
    html = renderer.render_outputs([display({"image/png": PNG + "\n"}, {"image/png": {"width": 40, "height": 20.5}})])
    assert f'<img src="data:image/png;base64,{PNG}" width="40" height="20.5" alt="">' in html
    html = renderer.render_outputs([display({"image/png": '" onerror="x', "text/plain": "fallback"})])
    assert only_mime(html) == "text/plain" and "onerror" not in html
    svg = "<svg xmlns='http://www.w3.org/2000/svg'><script>x</script></svg>"
    html = renderer.render_outputs([display({"image/svg+xml": svg})])
    assert base64.b64encode(svg.encode()).decode() in html and "<svg" not in html


def test_streams_keep_ansi_colours_as_spans() -> None:
    html = OutputRenderer().render_outputs([{"output_type": "stream", "name": "stdout",
                                             "text": "\x1b[1;31mred & bold\x1b[0m plain \x1b[38;5;196mx\x1b[39m\x1b[2K"}])
    assert '<span class="ansi-red-fg ansi-bold">red &amp; bold</span> plain ' in html
    assert '<span style="color: rgb(255,0,0)">x</span>' in html and "\x1b" not in html


def test_streams_show_the_last_state_of_overwritten_lines() -> None:
    html = OutputRenderer().render_outputs([{"output_type": "stream", "name": "stdout",
                                             "text": "a\r\nstep 1\rstep 2\r"}])
    assert html == '<div class="carme-output carme-output-stdout"><pre>a\nstep 2</pre></div>'


def test_ansi_conversion() -> None:
    assert ansi_to_html("a<b") == "a&lt;b"
    assert ansi_to_html("\x1b[92;44mx\x1b[49my") == ('<span class="ansi-green-intense-fg ansi-blue-bg">x</span>'
                                                    '<span class="ansi-green-intense-fg">y</span>')
    assert ansi_to_html("\x1b[48;2;1;2;3mz") == '<span style="background-color: rgb(1,2,3)">z</span>'
    assert ansi_to_html("\x1b[7mi") == '<span class="ansi-default-inverse-fg ansi-default-inverse-bg">i</span>'
    assert ansi_to_html("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\") == "link"  # hyperlinks: text only
    assert ansi_to_html("\x1b[38;5mbroken") == "broken"
    assert strip_ansi("\x1b[31mred\x1b[0m") == "red"


def test_errors_without_tracebacks_show_a_generic_message_and_no_stderr() -> None:
    outputs = [{"output_type": "stream", "name": "stderr", "text": "Warning: secret-path"},
               {"output_type": "stream", "name": "stdout", "text": "visible"},
               {"output_type": "error", "ename": "SecretError", "evalue": "secret-value",
                "traceback": ["\x1b[31mSecretError\x1b[0m: secret-value", "in secret_function()"]}]
    hidden = OutputRenderer(show_tracebacks=False).render_outputs(outputs)
    assert "secret" not in hidden.lower() and "visible" in hidden and ERROR_MESSAGE in hidden
    shown = OutputRenderer(show_tracebacks=True).render_outputs(outputs)
    assert "secret-path" in shown and '<span class="ansi-red-fg">SecretError</span>: secret-value' in shown
    assert "in secret_function()" in shown


def test_cell_errors_for_timeouts_and_dead_kernels() -> None:
    renderer = OutputRenderer()
    assert "too long" in renderer.render_cell_error(CellError("timeout", "CellTimeoutError", "after 1 s"))
    assert "kernel stopped" in renderer.render_cell_error(CellError("dead", "DeadKernelError", "x"))
    assert renderer.render_cell_error(CellError("exception", "E", "v")) == ""
    assert renderer.render_cell_error(None) == ""


def test_markdown_keeps_math_intact_and_escaped() -> None:
    renderer = OutputRenderer()
    html = renderer.render_markdown("Inline $a_1 < b_2$ and \\(x_*\\) and *em* and $$\\frac{a}{b}$$ in text.\n\n"
                                    "$$\na_1 \\\\ b_1\n$$\n\n\\begin{align}\nx &= y\n\\end{align}\n\nIt costs $5 or $6.")
    assert '<span class="carme-math">$a_1 &lt; b_2$</span>' in html
    assert '<span class="carme-math">\\(x_*\\)</span>' in html and "<em>em</em>" in html
    assert '<span class="carme-math">$$\\frac{a}{b}$$</span>' in html
    assert '<div class="carme-math">$$\na_1 \\\\ b_1\n$$</div>' in html
    assert '<div class="carme-math">\\begin{align}\nx &amp;= y\n\\end{align}</div>' in html
    assert "It costs $5 or $6." in html  # currency is not math


def test_markdown_headings_tables_attachments_and_link_safety() -> None:
    renderer = OutputRenderer()
    html = renderer.render_markdown("# My Title\n\n| a |\n|---|\n| 1 |\n\n![pic](attachment:p.png) "
                                    '<img src="attachment:p.png"> ![none](attachment:missing.png) '
                                    "[bad](javascript:alert(1)) ~~old~~",
                                    {"p.png": {"image/png": PNG}})
    assert '<h1 id="My-Title">My Title</h1>' in html and "<td>1</td>" in html and "<s>old</s>" in html
    assert html.count(f"data:image/png;base64,{PNG}") == 2 and 'src="attachment:missing.png"' in html
    assert 'href="javascript' not in html
    assert renderer.render_markdown(["# a", "\nb"]) == '<h1 id="a">a</h1>\n<p>b</p>\n'


def test_markdown_relative_urls_can_be_rewritten() -> None:
    renderer = OutputRenderer(rewrite_url=lambda url: f"/files/{url}" if url.endswith(".png") else None)
    html = renderer.render_markdown("![a](img/a.png) [doc](other.ipynb) ![b](/abs.png) ![c](https://x/c.png)")
    assert 'src="/files/img/a.png"' in html and 'href="other.ipynb"' in html
    assert 'src="/abs.png"' in html and 'src="https://x/c.png"' in html


@pytest.mark.parametrize("output", [{"output_type": "unknown"}, display({"application/json": {"a": 1}})])
def test_outputs_with_nothing_to_show(output: dict[str, Any]) -> None:
    assert OutputRenderer().render_outputs([output]) == ""
