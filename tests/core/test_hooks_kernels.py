"""The kernel hooks (test_hook_<name>): a plugin provisions the kernel, hears it start (and
subscribes to its messages there) and hears it stop. One real ipykernel for the module."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from carme import create_app, hookimpl
from carme.kernels.connection import ConnectionInfo
from carme.kernels.kernel import Kernel
from carme.kernels.provisioner import LocalProvisioner, Provisioner
from carme.kernels.specs import KernelSpec
from carme.server import Server


class RecordingProvisioner(LocalProvisioner):
    def __init__(self, record: dict[str, Any], *args: Any) -> None:
        super().__init__(*args)
        self.record = record

    async def launch(self, kernel_id: str, spec: KernelSpec, cwd: Path, env: dict[str, str], key: bytes,
                     reuse: ConnectionInfo | None = None) -> ConnectionInfo:
        self.record["launched"].append((kernel_id, spec.name))
        return await super().launch(kernel_id, spec, cwd, env, key, reuse)


class KernelWatcher:
    name = "watcher"

    def __init__(self) -> None:
        self.record: dict[str, Any] = {"launched": [], "started": [], "stopped": [], "messages": []}

    @hookimpl
    def carme_kernel_provisioner(self, server: Server, spec: KernelSpec) -> Provisioner:
        return RecordingProvisioner(self.record, server.kernels.ports, server.kernels.runtime_dir)

    @hookimpl
    async def carme_on_kernel_started(self, server: Server, kernel: Kernel) -> None:
        await asyncio.sleep(0)
        self.record["started"].append((kernel.id, kernel.execution_state))
        kernel.subscribe(lambda msg: self.record["messages"].append(msg.msg_type))

    @hookimpl
    def carme_on_kernel_stopped(self, server: Server, kernel: Kernel) -> None:
        self.record["stopped"].append(kernel.id)


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from tests.kernels.conftest import FAST, isolated_jupyter

    base = tmp_path_factory.mktemp("kernel-hooks")
    watcher = KernelWatcher()

    async def scenario() -> None:
        app = create_app(str(base), token="t", extensions=[], config_files=False, plugins=[watcher],
                         settings=FAST)
        await app.server.start()
        try:
            kernel = await app.server.kernels.start_kernel()
            watcher.record["kernel_id"] = kernel.id
            await app.server.kernels.shutdown_kernel(kernel.id)
        finally:
            await app.server.stop()

    with isolated_jupyter(base):
        asyncio.run(scenario())
    return watcher.record


def test_hook_carme_kernel_provisioner(record: dict[str, Any]) -> None:
    assert record["launched"] == [(record["kernel_id"], "python3")]


def test_hook_carme_on_kernel_started(record: dict[str, Any]) -> None:
    assert [kid for kid, _state in record["started"]] == [record["kernel_id"]]
    assert record["started"][0][1] == "idle"  # called once it answered kernel_info
    # Subscribed in the hook: the kernel's iopub messages reach the plugin.
    assert "status" in record["messages"]


def test_hook_carme_on_kernel_stopped(record: dict[str, Any]) -> None:
    assert record["stopped"] == [record["kernel_id"]]
