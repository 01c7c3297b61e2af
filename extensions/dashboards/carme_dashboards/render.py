"""OutputRenderer: nbformat outputs and markdown cells to the HTML the dashboard page streams.

Each output becomes one ``<div class="carme-output ...">``:

- a display or execute result shows the first mime type present in nbconvert's order
  (:data:`MIME_ORDER`), marked with ``data-mime-type``. A widget view becomes
  ``<div class="carme-widget" data-model-id="ID"><pre class="carme-widget-fallback">text</pre></div>``
  for the page's widget manager; ``application/javascript`` is dropped (the output shows nothing);
  HTML is inserted as it is (the notebook's author wrote it); markdown is rendered; LaTeX goes
  in ``<div class="carme-math">`` for the page's typesetter; images are ``<img>`` with ``data:``
  URLs (SVG too, as JupyterLab shows it: its ids and styles cannot clash with the page's);
  plain text is escaped, its ANSI colours as spans;
- a stream is ``<pre>`` text (classes ``carme-output-stdout`` / ``carme-output-stderr``), carriage
  returns and backspaces applied as a terminal shows them;
- an error shows its traceback only with ``show_tracebacks``; otherwise a generic message, and
  stderr streams are dropped too (they often carry the same details), as Voila does.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .ansi import ansi_to_html
from .executor import CellError
from .markdown import MarkdownRenderer, UrlRewriter
from .outputs import apply_control_characters

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
MIME_ORDER = (WIDGET_VIEW, "application/javascript", "text/html", "text/markdown", "text/latex",
              "image/svg+xml", "image/png", "image/jpeg", "text/plain")
ERROR_MESSAGE = "There was an error when executing this cell."
CELL_ERRORS = {
    "timeout": "This cell took too long to run and was stopped.",
    "dead": "The kernel stopped while this cell was running.",
}
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*")


class OutputRenderer:
    """Renders outputs and markdown for one dashboard configuration.

    ``rewrite_url`` (optional) maps relative link and image URLs in markdown to served ones
    (None leaves a URL as written).
    """

    def __init__(self, show_tracebacks: bool = False, *, rewrite_url: UrlRewriter | None = None) -> None:
        self.show_tracebacks = show_tracebacks
        self.markdown = MarkdownRenderer(rewrite_url)

    # -- cells ----------------------------------------------------------------------------------

    def render_markdown(self, source: str, attachments: Mapping[str, Any] | None = None) -> str:
        """A markdown cell's HTML (math left for the client; see :mod:`carme_dashboards.markdown`)."""
        return self.markdown.render(_text(source), attachments)

    def render_outputs(self, outputs: Iterable[Mapping[str, Any]]) -> str:
        """The HTML of a cell's outputs, in order."""
        return "".join(self.render_output(output) for output in outputs)

    def render_cell_error(self, error: CellError | None) -> str:
        """A note for a cell that timed out or whose kernel died ("" otherwise: an exception
        already shows as the cell's error output)."""
        message = CELL_ERRORS.get(error.kind) if error is not None else None
        if message is None:
            return ""
        return f'<div class="carme-output carme-output-error"><pre>{html.escape(message)}</pre></div>'

    # -- one output -----------------------------------------------------------------------------

    def render_output(self, output: Mapping[str, Any]) -> str:
        """The HTML of one nbformat output ("" when it shows nothing)."""
        kind = output.get("output_type")
        if kind == "stream":
            name = "stderr" if output.get("name") == "stderr" else "stdout"
            if name == "stderr" and not self.show_tracebacks:
                return ""
            text = apply_control_characters(_text(output.get("text")))
            if "\r" in text:  # what is left: CRLF, or a CR at the end (an HTML parser makes each a line break)
                text = text.replace("\r\n", "\n").replace("\r", "")
            return f'<div class="carme-output carme-output-{name}"><pre>{ansi_to_html(text)}</pre></div>'
        if kind == "error":
            if not self.show_tracebacks:
                body = html.escape(ERROR_MESSAGE)
            else:
                lines = output.get("traceback") or [f"{output.get('ename', '')}: {output.get('evalue', '')}"]
                body = ansi_to_html("\n".join(_text(line) for line in lines))
            return f'<div class="carme-output carme-output-error"><pre>{body}</pre></div>'
        if kind in ("display_data", "execute_result"):
            return self.render_data(output.get("data") or {}, output.get("metadata") or {})
        return ""

    def render_data(self, data: Mapping[str, Any], metadata: Mapping[str, Any]) -> str:
        """A mime bundle: the first renderable type in :data:`MIME_ORDER` ("" for none)."""
        for mime in MIME_ORDER:
            if mime not in data:
                continue
            body = self._render_mime(mime, data[mime], data, metadata)
            if body is None:
                continue  # present but unusable (e.g. a widget view without a model id): next type
            if not body:
                return ""
            return f'<div class="carme-output carme-output-result" data-mime-type="{mime}">{body}</div>'
        return ""

    def _render_mime(self, mime: str, value: Any, data: Mapping[str, Any], metadata: Mapping[str, Any]) -> str | None:
        if mime == WIDGET_VIEW:
            model_id = value.get("model_id") if isinstance(value, Mapping) else None
            if not isinstance(model_id, str) or not model_id:
                return None
            fallback = html.escape(_text(data.get("text/plain", "")))
            return (f'<div class="carme-widget" data-model-id="{html.escape(model_id)}">'
                    f'<pre class="carme-widget-fallback">{fallback}</pre></div>')
        if mime == "application/javascript":
            return ""
        if mime == "text/html":
            return _text(value)
        if mime == "text/markdown":
            return self.markdown.render(_text(value))
        if mime == "text/latex":
            return f'<div class="carme-math">{html.escape(_text(value), quote=False)}</div>'
        if mime.startswith("image/"):
            return _image(mime, _text(value), metadata)
        return f"<pre>{ansi_to_html(_text(value))}</pre>"


def _image(mime: str, value: str, metadata: Mapping[str, Any]) -> str | None:
    """An ``<img>`` with a data URL; width and height from the output's metadata as JupyterLab reads them."""
    if mime == "image/svg+xml":
        encoded = base64.b64encode(value.encode()).decode("ascii")
    elif _BASE64.fullmatch(value):
        encoded = "".join(value.split())
    else:
        return None
    attrs = ""
    own = metadata.get(mime)
    size = own if isinstance(own, Mapping) else metadata
    for name in ("width", "height"):
        number = size.get(name)
        if isinstance(number, int | float) and not isinstance(number, bool) and number > 0:
            attrs += f' {name}="{number:g}"'
    return f'<img src="data:{mime};base64,{encoded}"{attrs} alt="">'


def _text(value: Any) -> str:
    """nbformat text: a string, or a list of lines to join."""
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return value if isinstance(value, str) else ("" if value is None else str(value))
