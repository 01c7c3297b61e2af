"""Shared fixtures: a served root folder, an isolated Jupyter environment, a running carme."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from carme import create_app
from tests.environment import isolate
from tests.processes import CarmeServe
from tests.serving import TOKEN, Served, serve
from tests.wheels import Wheelhouse


@pytest.fixture(autouse=True)
def jupyter_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test runs in an isolated Jupyter environment (tests/environment.py): it never sees
    the machine's own config, and never leaves files behind."""
    return isolate(tmp_path_factory.mktemp("jupyter-home"), monkeypatch)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The folder a test server serves."""
    folder = tmp_path / "root"
    folder.mkdir()
    return folder


@pytest.fixture
def serve_app(root: Path) -> Iterator[Callable[..., Served]]:
    """``serve_app(**create_app arguments)``: carme on ``root`` on a real uvicorn until the end of
    the test; token :data:`~tests.serving.TOKEN` and no extensions unless given."""
    with contextlib.ExitStack() as stack:
        def start(**kwargs: Any) -> Served:
            kwargs.setdefault("token", TOKEN)
            kwargs.setdefault("extensions", [])
            return stack.enter_context(serve(create_app(str(root), **kwargs)))
        yield start


@pytest.fixture
def served(serve_app: Callable[..., Served]) -> Served:
    """carme with its core services on a real uvicorn, token auth on, no extensions."""
    return serve_app()


@pytest.fixture
def client(served: Served) -> Iterator[httpx.Client]:
    """An HTTP client authenticated with the token header, as JupyterLab sends it."""
    with served.client() as c:
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
def lab_server(serve_app: Callable[..., Served]) -> Served:
    """carme with the lab extension on a real uvicorn."""
    return serve_app(extensions=["lab"])


@pytest.fixture
def carme_serve(root: Path, tmp_path: Path) -> Iterator[Callable[..., CarmeServe]]:
    """``carme_serve(*args, **CarmeServe options)``: `carme serve` on ``root`` (``root_dir=`` for
    another folder) as a real process, run in ``tmp_path``; stopped at the end of the test."""
    started: list[CarmeServe] = []

    def start(*args: str, root_dir: Path | None = None, cwd: Path | None = None, **options: Any) -> CarmeServe:
        process = CarmeServe(root_dir or root, *args, cwd=cwd or tmp_path, **options)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Wheelhouse:
    """``wheels["carme"]``: the repo's distributions as wheels, each built once per session."""
    return Wheelhouse(tmp_path_factory)
