"""Scripts as dashboards: a ``.py`` (or another mapped extension) read as a notebook.

Voila turns a script of a mapped extension (``extension_language_mapping``) into a one-cell
notebook, and renders it cell by cell only when jupytext's contents manager runs in
jupyter_server. carme reads the *percent* format itself (no jupytext needed), which is what
jupytext, VS Code, Spyder and PyCharm write:

    # %% [markdown]
    # # Sales
    # %% tags=["skip-execution"]
    print("a code cell")

``# %%`` (or ``#%%``) starts a code cell, ``# %% [markdown]`` (``[md]``) a markdown cell whose
lines lose their ``# ``, ``# %% [raw]`` a raw cell; ``tags=[...]`` on the marker line become the
cell's tags (so ``skip-execution`` and ``raises-exception`` work). Text before the first marker
is a cell of its own, unless it is blank. A script without markers is one code cell, as in Voila.
Languages whose comments do not start with ``#`` are always one cell.
"""

from __future__ import annotations

import json
import re

from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_raw_cell

MARKER = re.compile(r"^#\s?%%(?!%)(?P<rest>.*)$")
KIND = re.compile(r"^\s*\[(?P<kind>markdown|md|raw)\]", re.IGNORECASE)
TAGS = re.compile(r"\btags\s*=\s*(?P<tags>\[[^\]]*\])")
HASH_COMMENT_LANGUAGES = {"python", "r", "julia", "bash", "sh", "ruby", "perl"}


def notebook_from_script(text: str, language: str) -> NotebookNode:
    """The notebook of a script in ``language`` (cells from its percent markers, if any)."""
    metadata = {"kernelspec": {"name": "", "display_name": "", "language": language},
                "language_info": {"name": language}}
    if language.lower() not in HASH_COMMENT_LANGUAGES or not any(MARKER.match(line) for line in text.splitlines()):
        return new_notebook(cells=[new_code_cell(text.rstrip("\n"))], metadata=metadata)
    cells = []
    kind, tags, lines = "code", [], []  # the cell being read: before the first marker, a code cell

    def close() -> None:
        body = "\n".join(lines).strip("\n")
        if not body and not cells and kind == "code":
            return  # a blank header
        if kind == "markdown":
            body = "\n".join(_uncomment(line) for line in lines).strip("\n")
            cells.append(new_markdown_cell(body))
        elif kind == "raw":
            cells.append(new_raw_cell("\n".join(_uncomment(line) for line in lines).strip("\n")))
        else:
            cells.append(new_code_cell(body))
        if tags:
            cells[-1].metadata["tags"] = tags

    for line in text.splitlines():
        marker = MARKER.match(line)
        if marker is None:
            lines.append(line)
            continue
        close()
        rest = marker.group("rest")
        found = KIND.match(rest)
        kind = {"md": "markdown"}.get(found.group("kind").lower(), found.group("kind").lower()) if found else "code"
        tags = _tags(rest)
        lines = []
    close()
    return new_notebook(cells=cells, metadata=metadata)


def _uncomment(line: str) -> str:
    if line.startswith("# "):
        return line[2:]
    return line[1:] if line.startswith("#") else line


def _tags(rest: str) -> list[str]:
    found = TAGS.search(rest)
    if found is None:
        return []
    try:
        tags = json.loads(found.group("tags"))
    except ValueError:
        return []
    return [t for t in tags if isinstance(t, str)]
