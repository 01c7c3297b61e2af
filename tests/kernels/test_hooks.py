"""The kernel hooks: carme_kernel_provisioner, carme_kernel_spec_manager, carme_on_kernel_started,
carme_on_kernel_stopped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from carme import create_app
from carme.hooks import hookimpl
from carme.kernels.connection import ConnectionInfo
from carme.kernels.kernel import Kernel
from carme.kernels.message import KernelMessage
from carme.kernels.provisioner import LocalProvisioner
from carme.kernels.specs import KernelSpec, KernelSpecManager
from carme.server import Server

from tests.environment import isolated
from tests.polling import await_until

from .conftest import FAST
from .zmqclient import execute

pytestmark = pytest.mark.asyncio(loop_scope="module")


class TaggingProvisioner(LocalProvisioner):
    """The built-in provisioner plus an environment variable, to prove it was used."""

    async def launch(self, kernel_id: str, spec: KernelSpec, cwd: Path, env: dict[str, str], key: bytes,
                     reuse: ConnectionInfo | None = None) -> ConnectionInfo:
        return await super().launch(kernel_id, spec, cwd, {**env, "PROVISIONED_BY": "test"}, key, reuse)


class Recorder:
    def __init__(self) -> None:
        self.started: list[tuple[str, str]] = []
        self.stopped: list[str] = []
        self.messages: list[KernelMessage] = []
        self.asked: list[str] = []

    @hookimpl
    def carme_kernel_provisioner(self, server: Server, spec: KernelSpec) -> LocalProvisioner | None:
        self.asked.append(spec.name)
        if spec.name != "python3":
            return None
        return TaggingProvisioner(server.kernels.ports, server.kernels.runtime_dir)

    @hookimpl
    async def carme_on_kernel_started(self, server: Server, kernel: Kernel) -> None:
        self.started.append((kernel.id, kernel.execution_state))
        kernel.subscribe(self.messages.append)  # what an extension such as widgets does

    @hookimpl
    def carme_on_kernel_stopped(self, server: Server, kernel: Kernel) -> None:
        self.stopped.append(kernel.id)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def setup(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Server, Recorder, Kernel]]:
    base = tmp_path_factory.mktemp("kernel-hooks")
    with isolated(base):
        (base / "root").mkdir()
        recorder = Recorder()
        app = create_app(str(base / "root"), token="t", extensions=[], config_files=False, settings=FAST,
                         plugins=[recorder])
        await app.server.start()
        try:
            kernel = await app.server.kernels.start_kernel("python3")
            yield app.server, recorder, kernel
        finally:
            await app.server.stop()


async def test_hook_carme_kernel_provisioner(setup: Any) -> None:
    _server, recorder, kernel = setup
    assert recorder.asked[0] == "python3"
    assert type(kernel.provisioner) is TaggingProvisioner
    ran = await execute(kernel, "import os; print(os.environ['PROVISIONED_BY'])")
    assert ran.reply.content["status"] == "ok" and ran.stdout == "test\n"


async def test_hook_carme_on_kernel_started(setup: Any) -> None:
    _server, recorder, kernel = setup
    assert recorder.started[0] == (kernel.id, "idle")  # called once the kernel answered kernel_info
    request = (await execute(kernel, "1 + 1")).request
    results = await await_until(lambda: [m for m in recorder.messages if m.msg_type == "execute_result"
                                         and m.parent_msg_id == request.msg_id], "the subscriber to see it")
    assert results[0].content["data"] == {"text/plain": "2"}


async def test_hook_carme_on_kernel_stopped(setup: Any) -> None:
    server, recorder, kernel = setup
    started = len(recorder.started)
    await server.kernels.restart_kernel(kernel.id)
    assert recorder.stopped == [] and len(recorder.started) == started  # a restart is neither
    other = await server.kernels.start_kernel("python3")  # the shared kernel stays for the other tests
    await server.kernels.shutdown_kernel(other.id)
    assert recorder.stopped == [other.id]


class OneSpec:
    """Kernelspecs from a folder of the test's own, instead of the Jupyter data paths."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @hookimpl
    def carme_kernel_spec_manager(self, server: Server) -> KernelSpecManager:
        return KernelSpecManager("echo", dirs=[str(self.folder)])


async def test_hook_carme_kernel_spec_manager(tmp_path: Path) -> None:
    spec = tmp_path / "kernels" / "echo"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text('{"argv": ["echo", "{connection_file}"], "display_name": "Echo"}')
    app = create_app(str(tmp_path), token="t", extensions=[], config_files=False, plugins=[OneSpec(tmp_path / "kernels")])
    await app.server.start()
    try:
        models = await asyncio.to_thread(app.server.kernelspecs.models)
        assert models["default"] == "echo" and "echo" in models["kernelspecs"]  # the built-in's default is python3
        assert app.server.kernels.specs is app.server.kernelspecs  # kernels start from the same specs
    finally:
        await app.server.stop()
