"""Helpers for the contents tests: servers with custom settings, notebooks, events."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serving import Served

Factory = Callable[..., httpx.Client]


@pytest.fixture
def server_with(serve_app: Callable[..., Served]) -> Iterator[Factory]:
    """``server_with(**settings)``: carme on ``root`` with those settings; an authenticated client."""
    with contextlib.ExitStack() as stack:
        yield lambda **settings: stack.enter_context(serve_app(settings=settings).client())


def notebook(*sources: str, outputs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A small valid v4.5 notebook with one code cell per source."""
    cells = []
    for i, source in enumerate(sources):
        cells.append({"cell_type": "code", "execution_count": None, "id": f"cell-{i}", "metadata": {},
                      "outputs": outputs or [], "source": source})
    return {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                        "language": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def write_notebook(path: Path, nb: dict[str, Any]) -> None:
    import nbformat

    path.write_text(nbformat.writes(nbformat.from_dict(nb)) + "\n", encoding="utf-8")


def json_of(response: httpx.Response) -> Any:
    assert response.headers["content-type"].startswith("application/json"), response.text
    return json.loads(response.text)
