"""ANSI escape sequences (colours in streams and tracebacks) to HTML, the text escaped.

SGR colours and attributes become spans with JupyterLab's and nbconvert's class names:
``ansi-red-fg``, ``ansi-green-intense-bg``, ``ansi-bold``, ``ansi-italic``, ``ansi-underline``;
256-colour and 24-bit colours become an inline ``color`` / ``background-color``. Every other
escape sequence (cursor movement, titles, hyperlinks) is dropped.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, replace

COLOURS = ("black", "red", "green", "yellow", "blue", "magenta", "cyan", "white")
_CUBE = (0, 95, 135, 175, 215, 255)

# CSI sequences (SGR is the one ending in "m"), OSC sequences (ended by BEL or ESC \), and
# two-character escapes.
_ESCAPE = re.compile(r"\x1b(?:\[(?P<csi>[0-?]*)[ -/]*(?P<final>[@-~])|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")

Colour = int | tuple[int, int, int] | None  # 0-15: the named palette; a tuple: an RGB colour


@dataclass(frozen=True)
class Style:
    fg: Colour = None
    bg: Colour = None
    bold: bool = False
    italic: bool = False
    underline: bool = False
    inverse: bool = False

    def span(self, text: str) -> str:
        """``text`` (already escaped) in a span of this style, or bare when the style is plain."""
        fg, bg = (self.bg, self.fg) if self.inverse else (self.fg, self.bg)
        classes: list[str] = []
        styles: list[str] = []
        for colour, layer, css in ((fg, "fg", "color"), (bg, "bg", "background-color")):
            if isinstance(colour, int):
                name = COLOURS[colour % 8] + ("-intense" if colour >= 8 else "")
                classes.append(f"ansi-{name}-{layer}")
            elif colour is not None:
                styles.append(f"{css}: rgb({colour[0]},{colour[1]},{colour[2]})")
        if self.inverse and fg is None:
            classes.append("ansi-default-inverse-fg")
        if self.inverse and bg is None:
            classes.append("ansi-default-inverse-bg")
        classes += [name for name, on in (("ansi-bold", self.bold), ("ansi-italic", self.italic),
                                          ("ansi-underline", self.underline)) if on]
        if not classes and not styles:
            return text
        attrs = f' class="{" ".join(classes)}"' if classes else ""
        attrs += f' style="{"; ".join(styles)}"' if styles else ""
        return f"<span{attrs}>{text}</span>"


def ansi_to_html(text: str) -> str:
    """``text`` escaped for HTML, its ANSI colours as spans, other escape sequences removed."""
    if "\x1b" not in text:
        return html.escape(text, quote=False)
    out: list[str] = []
    style = Style()
    pos = 0
    for match in _ESCAPE.finditer(text):
        if match.start() > pos:
            out.append(style.span(html.escape(text[pos:match.start()], quote=False)))
        pos = match.end()
        if match.group("final") == "m":
            style = _apply(style, match.group("csi"))
    if pos < len(text):
        out.append(style.span(html.escape(text[pos:], quote=False)))
    return "".join(out)


def strip_ansi(text: str) -> str:
    """``text`` without its escape sequences."""
    return _ESCAPE.sub("", text) if "\x1b" in text else text


# SGR codes that switch one attribute on or off.
_ATTRIBUTES = {1: ("bold", True), 3: ("italic", True), 4: ("underline", True), 7: ("inverse", True),
               22: ("bold", False), 23: ("italic", False), 24: ("underline", False), 27: ("inverse", False)}
# SGR code ranges of the 16 named colours: (first code, layer, palette index of the first code).
_COLOUR_RANGES = ((30, "fg", 0), (90, "fg", 8), (40, "bg", 0), (100, "bg", 8))


def _apply(style: Style, params: str) -> Style:
    """The style after one SGR sequence (its parameters, e.g. ``"1;31"``)."""
    codes = [int(p) if p.isdigit() else 0 for p in params.replace(":", ";").split(";")] if params else [0]
    i = 0
    while i < len(codes):
        code = codes[i]
        i += 1
        if code == 0:
            style = Style()
        elif code in _ATTRIBUTES:
            name, on = _ATTRIBUTES[code]
            style = replace(style, **{name: on})
        elif code in (39, 49):
            style = replace(style, **{"fg" if code == 39 else "bg": None})
        elif code in (38, 48):
            colour, i = _extended_colour(codes, i)
            if colour is not None:
                style = replace(style, **{"fg" if code == 38 else "bg": colour})
        else:
            for first, layer, base in _COLOUR_RANGES:
                if first <= code < first + 8:
                    style = replace(style, **{layer: base + code - first})
    return style


def _extended_colour(codes: list[int], i: int) -> tuple[Colour, int]:
    """A ``38;5;N`` or ``38;2;R;G;B`` colour starting at ``codes[i]``; (colour, next index)."""
    if i < len(codes) and codes[i] == 5 and i + 1 < len(codes):
        return _palette(codes[i + 1]), i + 2
    if i < len(codes) and codes[i] == 2 and i + 3 < len(codes):
        r, g, b = (min(max(c, 0), 255) for c in codes[i + 1:i + 4])
        return (r, g, b), i + 4
    return None, len(codes)  # malformed: ignore the rest of the sequence


def _palette(n: int) -> Colour:
    """Colour ``n`` of the 256-colour palette: the 16 named ones stay classes."""
    if n < 16:
        return max(n, 0)
    if n < 232:
        n -= 16
        return (_CUBE[n // 36], _CUBE[(n // 6) % 6], _CUBE[n % 6])
    if n < 256:
        level = 8 + 10 * (n - 232)
        return (level, level, level)
    return None
