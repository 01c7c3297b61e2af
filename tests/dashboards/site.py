"""Helpers for the dashboards page, visit and app-mode tests: notebooks on disk, a carme with the
dashboards extension on a real uvicorn, a streamed page read chunk by chunk, gates that hold a
kernel's start or a cell until the test lets it go (so nothing depends on how fast things are)."""

from __future__ import annotations

import contextlib
import json
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from carme import create_app
from tests.serving import AUTH, TOKEN, Served, serve

SENTINEL = "SOURCE-SENTINEL-91c2"  # in a comment of every code cell: must never reach the browser
CONFIG = re.compile(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', re.S)


def write_notebook(path: Path, *cells: str | tuple[str, str], kernel: str = "python3",
                   language: str = "python") -> Path:
    """A notebook of code cells (strings, each given the sentinel comment) and ("markdown", text)."""
    made = []
    for cell in cells:
        if isinstance(cell, tuple):
            made.append(new_markdown_cell(cell[1]))
        else:
            made.append(new_code_cell(f"{cell}  # {SENTINEL}" if "\n" not in cell else f"# {SENTINEL}\n{cell}"))
    nb = new_notebook(cells=made)
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": language}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def gate_code(gate: Path) -> str:
    """A cell that waits until the test creates ``gate``."""
    return f"import os as _os, time as _t\nwhile not _os.path.exists({str(gate)!r}):\n    _t.sleep(0.02)"


def held_kernelspec(data_dir: Path, name: str, gate: Path) -> None:
    """A Python kernelspec whose kernel starts only once ``gate`` exists."""
    folder = data_dir / "kernels" / name
    folder.mkdir(parents=True, exist_ok=True)
    wait = (f"import os, time\nwhile not os.path.exists({str(gate)!r}): time.sleep(0.02)\n"
            "from ipykernel import kernelapp\nkernelapp.launch_new_instance()")
    (folder / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-c", wait, "-f", "{connection_file}"],
        "display_name": f"Held {name}", "language": "python"}))


@contextlib.contextmanager
def dashboards(root: Path, base_url: str | None = None, **settings: Any) -> Iterator[Served]:
    """carme with only the dashboards extension, token auth, ``dashboards.<key>`` settings."""
    values = {(key if "." in key or key in CORE_KEYS else f"dashboards.{key}"): value
              for key, value in settings.items()}
    app = create_app(str(root), token=TOKEN, extensions=["dashboards"], config_files=False, base_url=base_url,
                     settings={"kernel_poll_interval": 0.5, **values})
    with serve(app) as running:
        yield running


CORE_KEYS = {"kernel_info_timeout", "cull_idle_timeout", "default_url"}


def http(served: Served, prefix: str = "/", cookies: dict[str, str] | None = None) -> httpx.Client:
    """A client of ``served`` with the token header (as a visitor who logged in)."""
    return httpx.Client(base_url=served.url + prefix, headers=AUTH, timeout=60, cookies=cookies)


@dataclass
class Page:
    """A dashboard page being streamed: ``chunks`` as they came, ``text`` so far."""

    response: httpx.Response
    chunks: list[str] = field(default_factory=list)
    _iterator: Iterator[str] | None = None

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    def next_chunk(self) -> str | None:
        if self._iterator is None:
            self._iterator = self.response.iter_text()
        chunk = next(self._iterator, None)
        if chunk is not None:
            self.chunks.append(chunk)
        return chunk

    def until(self, predicate: Callable[[str], bool]) -> str:
        """Read until ``predicate(text so far)``; fails if the page ends first."""
        while not predicate(self.text):
            if self.next_chunk() is None:
                raise AssertionError(f"the page ended before the condition held:\n{self.text[-3000:]}")
        return self.text

    def finish(self) -> str:
        while self.next_chunk() is not None:
            pass
        return self.text

    def config(self) -> dict[str, Any]:
        match = CONFIG.search(self.until(lambda t: CONFIG.search(t) is not None))
        assert match is not None
        return dict(json.loads(match.group(1)))


@contextlib.contextmanager
def page(client: httpx.Client, url: str) -> Iterator[Page]:
    with client.stream("GET", url) as response:
        yield Page(response)


def cells(html: str) -> dict[int, str]:
    """Index -> the HTML of each streamed cell section."""
    found = re.findall(r'<section class="carme-cell[^"]*" data-cell-index="(\d+)"[^>]*>(.*?)</section>', html, re.S)
    return {int(index): body for index, body in found}


def kernel_ids(served: Served) -> set[str]:
    return {kernel.id for kernel in served.app.server.kernels}
