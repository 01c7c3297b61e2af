"""Shared fixtures: a served root folder, an isolated Jupyter environment, a running carme."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jupyter_core import paths as jupyter_paths

from carme import create_app
from tests.serving import Served, serve

TOKEN = "test-token"


@pytest.fixture(autouse=True)
def jupyter_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every Jupyter path (config, data, runtime) at a fresh folder: tests never see the
    machine's own config, and never leave files behind."""
    home = tmp_path_factory.mktemp("jupyter-home")
    for name, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                      ("JUPYTER_RUNTIME_DIR", "runtime")):
        (home / sub).mkdir()
        monkeypatch.setenv(name, str(home / sub))
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", str(home / "config"))
    # The sys-prefix and system config dirs are fixed by jupyter_core at import: move them too,
    # so no test reads the machine's config or writes into the venv (carme extension enable).
    monkeypatch.setattr(jupyter_paths, "ENV_CONFIG_PATH", [str(home / "env-config")])
    monkeypatch.setattr(jupyter_paths, "SYSTEM_CONFIG_PATH", [str(home / "system-config")])
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "0")
    monkeypatch.delenv("JUPYTER_TOKEN", raising=False)
    for key in list(os.environ):
        if key.startswith("CARME_"):
            monkeypatch.delenv(key)
    return home


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The folder a test server serves."""
    folder = tmp_path / "root"
    folder.mkdir()
    return folder


@pytest.fixture
def served(root: Path) -> Iterator[Served]:
    """carme with its core services on a real uvicorn, token auth on, no extensions."""
    app = create_app(str(root), token=TOKEN, extensions=[])
    with serve(app) as running:
        yield running


@pytest.fixture
def client(served: Served) -> Iterator[httpx.Client]:
    """An HTTP client authenticated with the token header, as JupyterLab sends it."""
    with httpx.Client(base_url=served.url, headers={"Authorization": f"token {TOKEN}"}, timeout=60) as c:
        yield c


@pytest.fixture
def anon(served: Served) -> Iterator[httpx.Client]:
    """An HTTP client without credentials."""
    with httpx.Client(base_url=served.url, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One headless Debian Chromium per test module (never a browser Playwright downloads)."""
    from playwright import sync_api

    from tests.browser import CHROMIUM, FLAGS

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (never `playwright install`)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def lab_server(root: Path) -> Iterator[Served]:
    """carme with the lab extension on a real uvicorn."""
    app = create_app(str(root), token=TOKEN, extensions=["lab"])
    with serve(app) as running:
        yield running
