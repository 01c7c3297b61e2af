"""Fixtures for the kernel tests: a started carme Server shared by a test module (kernel starts
take a second or two each), in its own isolated Jupyter environment."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from carme import create_app
from carme.kernels.kernel import Kernel
from carme.kernels.message import KernelMessage
from carme.server import Server

# Fast monitoring so deaths are noticed quickly in tests.
FAST = {"kernel_poll_interval": 0.2, "kernel_info_timeout": 60.0, "shutdown_wait_time": 4.0}


@contextlib.contextmanager
def isolated_jupyter(base: Path) -> Iterator[Path]:
    """Point every Jupyter path at ``base`` for a whole module (the autouse fixture is per test)."""
    with pytest.MonkeyPatch.context() as mp:
        for name, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                          ("JUPYTER_RUNTIME_DIR", "runtime")):
            (base / sub).mkdir(exist_ok=True)
            mp.setenv(name, str(base / sub))
        mp.setenv("JUPYTER_CONFIG_PATH", str(base / "config"))
        mp.setenv("JUPYTER_PLATFORM_DIRS", "0")
        mp.delenv("JUPYTER_TOKEN", raising=False)
        yield base


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def kserver(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    """A started carme Server (no HTTP) for direct use of server.kernels."""
    base = tmp_path_factory.mktemp("kernels-module")
    with isolated_jupyter(base):
        root = base / "root"
        (root / "sub" / "deeper").mkdir(parents=True)
        app = create_app(str(root), token="t", extensions=[], config_files=False, settings=FAST)
        await app.server.start()
        try:
            yield app.server
        finally:
            await app.server.stop()
    assert not list((base / "runtime").glob("kernel-*.json")), "connection files left behind"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose (it is reaped by whoever started it).
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            return False
    return True


async def wait_for(condition: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Wait (polling) until ``condition()`` is truthy; fail with ``what`` after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := condition()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
    return value


class Collector:
    """Subscribes to a kernel's iopub and keeps every message."""

    def __init__(self, kernel: Kernel) -> None:
        self.messages: list[KernelMessage] = []
        self.unsubscribe = kernel.subscribe(self.messages.append)

    def of_type(self, msg_type: str, parent: str | None = None) -> list[KernelMessage]:
        return [m for m in self.messages if m.msg_type == msg_type and (parent is None or m.parent_msg_id == parent)]

    def statuses(self) -> list[str]:
        return [m.content.get("execution_state") for m in self.messages if m.msg_type == "status"]


async def execute(kernel: Kernel, code: str, identity: bytes = b"test-client", timeout: float = 60.0
                  ) -> tuple[KernelMessage, KernelMessage]:
    """Run ``code`` over a client shell socket from kernel.connect; (request, execute_reply)."""
    sock = kernel.connect("shell", identity)
    try:
        request = kernel.session.msg("shell", "execute_request", {"code": code, "silent": False, "store_history": False,
                                                                   "user_expressions": {}, "allow_stdin": False})
        await sock.send_multipart(kernel.session.serialize(request))
        reply = await recv_reply(kernel, sock, request.msg_id, timeout)
        return request, reply
    finally:
        sock.close(linger=0)


async def recv_reply(kernel: Kernel, sock: Any, msg_id: str, timeout: float = 60.0) -> KernelMessage:
    async def read() -> KernelMessage:
        while True:
            msg = kernel.session.deserialize("shell", await sock.recv_multipart())
            if msg is not None and msg.parent_msg_id == msg_id:
                return msg
    return await asyncio.wait_for(read(), timeout)


PYTHON = sys.executable


TOKEN = "kernel-test-token"


@pytest.fixture(scope="module")
def kserved(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """carme on a real uvicorn with fast kernel monitoring, shared by a test module."""
    from tests.serving import serve

    base = tmp_path_factory.mktemp("kernels-served")
    with isolated_jupyter(base):
        root = base / "root"
        (root / "dir").mkdir(parents=True)
        app = create_app(str(root), token=TOKEN, extensions=[], config_files=False, settings=FAST)
        with serve(app) as running:
            yield running
    assert not list((base / "runtime").glob("kernel-*.json")), "connection files left behind"


@pytest.fixture
def http(kserved: Any) -> Iterator[Any]:
    import httpx

    with httpx.Client(base_url=kserved.url, headers={"Authorization": f"token {TOKEN}"}, timeout=90) as c:
        yield c
