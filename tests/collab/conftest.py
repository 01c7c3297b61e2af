"""Fixtures for the collab extension: carme with collab (and watch) on a real uvicorn."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from carme import create_app
from tests.collab.clients import notebook
from tests.conftest import TOKEN
from tests.serving import Served, serve


@pytest.fixture
def collab_settings() -> dict[str, Any]:
    """Settings of the collab app; tests override this fixture."""
    return {"collab.save_delay": 0.2}


@pytest.fixture
def collab_extensions() -> list[str]:
    return ["collab"]


@pytest.fixture
def collab(root: Path, collab_settings: dict[str, Any], collab_extensions: list[str]) -> Iterator[Served]:
    """carme with the collab extension, served; ``root/demo.ipynb`` has two code cells."""
    (root / "demo.ipynb").write_text(json.dumps(notebook("a = 1", "print(a)")))
    app = create_app(str(root), token=TOKEN, extensions=collab_extensions, settings=collab_settings)
    with serve(app) as running:
        yield running
