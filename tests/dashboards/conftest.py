"""Fixtures for the dashboards tests: a started carme Server with real ipykernel kernels, and
helpers to build notebooks and run them through the NotebookExecutor."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_raw_cell

from carme.kernels.kernel import Kernel
from carme_dashboards.executor import CellResult, NotebookExecutor
from tests.dashboards.client_site import StreamedPage, client_site_running
from tests.kernels.conftest import kserver  # noqa: F401  (the shared module-scoped server fixture)
from tests.serving import Served


def notebook(*cells: str | NotebookNode) -> NotebookNode:
    """A notebook of code cells (strings) and ready-made cells (markdown, raw, tagged ...)."""
    return new_notebook(cells=[new_code_cell(c) if isinstance(c, str) else c for c in cells])


def tagged(source: str, *tags: str) -> NotebookNode:
    return new_code_cell(source, metadata={"tags": list(tags)})


def markdown(source: str) -> NotebookNode:
    return new_markdown_cell(source)


def raw(source: str) -> NotebookNode:
    return new_raw_cell(source)


async def run(kernel: Kernel, nb: NotebookNode, **options: Any) -> list[CellResult]:
    """Every result of one run of ``nb`` with a fresh executor (closed afterwards)."""
    async with NotebookExecutor(kernel) as executor:
        return [result async for result in executor.execute(nb, **options)]


def texts(result: CellResult, name: str = "stdout") -> list[str]:
    """The stream texts of ``name`` in a cell's outputs."""
    return [o["text"] for o in result.outputs if o["output_type"] == "stream" and o["name"] == name]


@pytest.fixture
def client_site(root: Path) -> Iterator[tuple[Served, StreamedPage]]:
    """The page client's test site (tests/dashboards/client_site.py) with a kernel started."""
    with client_site_running(root) as site:
        yield site
