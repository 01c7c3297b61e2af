"""Markdown cells (and text/markdown outputs) to HTML with markdown-it-py, math left for the page.

CommonMark plus tables and strikethrough (what JupyterLab's GFM renderer shows most), raw HTML
allowed (the notebook's author wrote it, as in JupyterLab and Voila). Math is kept out of the
markdown parser, so that ``_`` and ``\\\\`` inside a formula are not taken for emphasis or
escapes, and comes out with its original delimiters, HTML-escaped:

- in a paragraph (``$..$``, ``\\(..\\)``, also ``$$..$$`` and ``\\[..\\]``): ``<span class="carme-math">``;
- on lines of their own (``$$..$$``, and ``\\begin{align}..\\end{align}`` style environments,
  which are their own delimiters): ``<div class="carme-math">``.

The page's client typesets those elements. Images written as ``attachment:NAME`` come from the
cell's attachments as ``data:`` URLs; headings get JupyterLab's ids (spaces become ``-``).
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from mdit_py_plugins.amsmath import amsmath_plugin
from mdit_py_plugins.anchors import anchors_plugin
from mdit_py_plugins.dollarmath import dollarmath_plugin

_CLOSERS = {"$": "$", "$$": "$$", "\\(": "\\)", "\\[": "\\]"}
_HTML_ATTACHMENT = re.compile(r"""(src\s*=\s*["'])attachment:([^"']+)(["'])""", re.IGNORECASE)
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*")

# A relative link or image URL in markdown -> the URL to use (None: leave it).
UrlRewriter = Callable[[str], str | None]


class MarkdownRenderer:
    """One configured markdown-it parser (built once: its set-up costs more than a cell)."""

    def __init__(self, rewrite_url: UrlRewriter | None = None) -> None:
        self.rewrite_url = rewrite_url
        md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
        md.use(dollarmath_plugin, allow_labels=False, allow_space=True, allow_digits=False, double_inline=True)
        md.use(amsmath_plugin)
        md.use(anchors_plugin, min_level=1, max_level=6, slug_func=_heading_id)
        md.inline.ruler.before("escape", "bracket_math", _bracket_math)
        for name in ("math_inline", "math_inline_double", "math_block", "amsmath"):
            md.add_render_rule(name, _render_math)
        self._md = md

    def render(self, source: str, attachments: Mapping[str, Any] | None = None) -> str:
        """The HTML of markdown ``source``; ``attachments`` are the cell's (nbformat shape)."""
        tokens = self._md.parse(source, {})
        if attachments or self.rewrite_url:
            self._resolve_urls(tokens, attachments or {})
        return self._md.renderer.render(tokens, self._md.options, {})

    def _resolve_urls(self, tokens: Sequence[Token], attachments: Mapping[str, Any]) -> None:
        for token in tokens:
            if token.children:
                self._resolve_urls(token.children, attachments)
            if token.type in ("image", "link_open"):
                name = "src" if token.type == "image" else "href"
                url = str(token.attrGet(name) or "")
                new = self._url(url, attachments, image=token.type == "image")
                if new is not None:
                    token.attrSet(name, new)
            elif token.type in ("html_inline", "html_block") and "attachment:" in token.content:
                token.content = _HTML_ATTACHMENT.sub(
                    lambda m: m.group(1) + html.escape(_attachment_url(attachments, html.unescape(m.group(2))) or
                                                       "attachment:" + m.group(2)) + m.group(3),
                    token.content)

    def _url(self, url: str, attachments: Mapping[str, Any], *, image: bool) -> str | None:
        if image and url.startswith("attachment:"):
            return _attachment_url(attachments, url[len("attachment:"):])
        if self.rewrite_url is not None and _is_relative(url):
            return self.rewrite_url(url)
        return None


def _attachment_url(attachments: Mapping[str, Any], name: str) -> str | None:
    """A ``data:`` URL for the image attachment ``name`` (None when there is no such image)."""
    bundle = attachments.get(name)
    if not isinstance(bundle, Mapping):
        return None
    for mime, data in bundle.items():
        if not (isinstance(mime, str) and mime.startswith("image/")):
            continue
        text = "".join(data) if isinstance(data, list) else data
        if not isinstance(text, str):
            continue
        if mime == "image/svg+xml":
            if not text.lstrip().startswith("<"):
                return f"data:{mime};base64,{''.join(text.split())}"  # already base64 in some files
            text = base64.b64encode(text.encode()).decode("ascii")
        elif not _BASE64.fullmatch(text):
            continue
        return f"data:{mime};base64,{''.join(text.split())}"
    return None


def _is_relative(url: str) -> bool:
    return bool(url) and not url.startswith(("/", "#", "?")) and not re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", url)


def _heading_id(title: str) -> str:
    """JupyterLab's heading ids: the heading's text with spaces as dashes."""
    return re.sub(r"\s+", "-", title.strip())


def _bracket_math(state: StateInline, silent: bool) -> bool:
    """Inline rule for ``\\(..\\)`` and ``\\[..\\]`` (before markdown's backslash escapes)."""
    pos = state.pos
    src = state.src
    if src[pos] != "\\" or pos + 1 >= state.posMax or src[pos + 1] not in "([":
        return False
    opener = src[pos:pos + 2]
    end = src.find(_CLOSERS[opener], pos + 2)
    if end < 0 or end + 2 > state.posMax:
        return False
    if not silent:
        token = state.push("math_inline" if opener == "\\(" else "math_inline_double", "math", 0)
        token.content = src[pos + 2:end]
        token.markup = opener
    state.pos = end + 2
    return True


def _render_math(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    if token.type == "amsmath":  # the environment is its own delimiter
        return f'<div class="carme-math">{html.escape(token.content.strip(), quote=False)}</div>\n'
    opener = token.markup or "$"
    tex = html.escape(f"{opener}{token.content}{_CLOSERS.get(opener, opener)}", quote=False)
    if token.type == "math_block":
        return f'<div class="carme-math">{tex}</div>\n'
    # Inside a paragraph even display math ($$..$$, \[..\]) stays a span (a div would close the
    # paragraph); its delimiters tell the typesetter it is display math.
    return f'<span class="carme-math">{tex}</span>'
