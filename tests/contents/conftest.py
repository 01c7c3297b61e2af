"""Helpers for the contents tests: servers with custom settings, notebooks, events."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from carme import create_app
from tests.conftest import TOKEN
from tests.serving import serve

Factory = Callable[..., httpx.Client]


@pytest.fixture
def server_with(root: Path) -> Iterator[Factory]:
    """Start carme on ``root`` with extra settings; returns an authenticated client."""
    with contextlib.ExitStack() as stack:
        def start(**settings: Any) -> httpx.Client:
            app = create_app(str(root), token=TOKEN, extensions=[], settings=settings)
            running = stack.enter_context(serve(app))
            return stack.enter_context(httpx.Client(base_url=running.url, timeout=60,
                                                    headers={"Authorization": f"token {TOKEN}"}))
        yield start


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
