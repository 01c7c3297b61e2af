"""Fixtures for the lab extension: a carme with `lab` enabled, and fake prebuilt labextensions."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serving import Served

CONFIG_DATA = re.compile(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', re.S)


def page_config(html: str) -> dict[str, Any]:
    """The page config embedded in a rendered JupyterLab page."""
    match = CONFIG_DATA.search(html)
    assert match, "no jupyter-config-data script in the page"
    return json.loads(match.group(1))


def make_labextension(folder: Path, name: str, *, version: str = "1.0.0", marker: str = "") -> Path:
    """Lay out a prebuilt labextension as `jupyter labextension build` does: package.json with
    jupyterlab._build, a hashed remoteEntry, a settings schema, a theme and install.json."""
    ext = folder / name
    (ext / "static").mkdir(parents=True)
    (ext / "static" / "remoteEntry.0123456789abcdef.js").write_text(f"/* {name} {marker} */")
    (ext / "static" / "style.js").write_text("/* style */")
    (ext / "package.json").write_text(json.dumps({
        "name": name, "version": version,
        "jupyterlab": {"_build": {"load": "static/remoteEntry.0123456789abcdef.js", "extension": "./extension",
                                  "style": "./style"}},
    }))
    (ext / "install.json").write_text(json.dumps({"packageManager": "python", "packageName": name.strip("@")}))
    schema_dir = ext / "schemas" / name
    schema_dir.mkdir(parents=True)
    (schema_dir / "plugin.json").write_text(json.dumps({
        "title": "Test plugin", "type": "object",
        "properties": {"answer": {"type": "integer", "default": 42}},
    }))
    (schema_dir / "package.json.orig").write_text("{}")
    theme_dir = ext / "themes" / name
    theme_dir.mkdir(parents=True)
    (theme_dir / "index.css").write_text(".x { color: red }")
    return ext


@pytest.fixture
def lab(lab_server: Served) -> Iterator[httpx.Client]:
    """A token-authenticated client of `lab_server` (tests/conftest.py)."""
    with lab_server.client() as c:
        yield c
