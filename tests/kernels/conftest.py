"""Fixtures for the kernel tests: a started carme Server shared by a test module (kernel starts
take a second or two each), in its own isolated Jupyter environment."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio

from carme import create_app
from carme.server import Server
from tests.environment import isolated
from tests.serving import Served, serve_isolated

# Fast monitoring so deaths are noticed quickly in tests.
FAST = {"kernel_poll_interval": 0.2, "kernel_info_timeout": 60.0, "shutdown_wait_time": 4.0}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def kserver(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    """A started carme Server (no HTTP) for direct use of server.kernels."""
    base = tmp_path_factory.mktemp("kernels-module")
    with isolated(base):
        root = base / "root"
        (root / "sub" / "deeper").mkdir(parents=True)
        app = create_app(str(root), token="t", extensions=[], config_files=False, settings=FAST)
        await app.server.start()
        try:
            yield app.server
        finally:
            await app.server.stop()
    assert not list((base / "runtime").glob("kernel-*.json")), "connection files left behind"


@pytest.fixture(scope="module")
def kserved(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """carme on a real uvicorn with fast kernel monitoring, shared by a test module."""
    home = tmp_path_factory.mktemp("kernels-served")
    (home / "root" / "dir").mkdir(parents=True)
    with serve_isolated(home, settings=FAST) as running:
        yield running


@pytest.fixture
def http(kserved: Served) -> Iterator[httpx.Client]:
    with kserved.client(timeout=90) as c:
        yield c
