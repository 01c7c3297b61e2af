"""A provisioner that fails while a kernel stops is logged, never swallowed, and what can still be
cleaned up is; a kernel that never answers kernel_info fails with its own error type, launched
once. Real kernel processes; the provisioner is the built-in one with a fault added."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from carme import hookimpl
from carme.kernels.kernel import KernelInfoTimeoutError
from carme.kernels.provisioner import LocalProvisioner
from carme.kernels.specs import KernelSpec
from carme.server import Server

from tests.polling import await_until
from tests.processes import pid_alive

pytestmark = pytest.mark.asyncio(loop_scope="module")


class FaultyProvisioner(LocalProvisioner):
    """The local provisioner, raising ``faults[method]`` once from that method when set."""

    def __init__(self, plugin: Faults, server: Server) -> None:
        super().__init__(server.kernels.ports, server.kernels.runtime_dir, server.settings["ipykernel_no_drop"])
        self.plugin = plugin

    def _fault(self, method: str) -> None:
        fault = self.plugin.faults.pop(method, None)
        if fault is not None:
            raise fault

    async def launch(self, *args: object, **kwargs: object) -> dict[str, object]:
        self.plugin.launches += 1
        return await super().launch(*args, **kwargs)  # type: ignore[arg-type]

    async def wait(self, timeout: float) -> int | None:
        self._fault("wait")
        return await super().wait(timeout)

    async def cleanup(self, restart: bool) -> None:
        await super().cleanup(restart)
        if not restart:
            self._fault("cleanup")


class Faults:
    name = "faults"

    def __init__(self) -> None:
        self.faults: dict[str, Exception] = {}
        self.launches = 0
        self.made: list[FaultyProvisioner] = []

    @hookimpl
    def carme_kernel_provisioner(self, server: Server, spec: KernelSpec) -> LocalProvisioner:
        provisioner = FaultyProvisioner(self, server)
        self.made.append(provisioner)
        return provisioner


@pytest.fixture
def faults(kserver: Server) -> Iterator[Faults]:
    plugin = Faults()
    kserver.plugins.register(plugin)
    try:
        yield plugin
    finally:
        kserver.plugins.pm.unregister(name="faults")


def errors_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "carme.kernels.kernel" and r.levelno >= logging.ERROR]


async def test_a_failing_provisioner_cleanup_is_logged(kserver: Server, faults: Faults,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    kernel = await kserver.kernels.start_kernel("python3")
    faults.faults["cleanup"] = RuntimeError("the node cannot be released")
    with caplog.at_level(logging.ERROR, logger="carme.kernels.kernel"):
        await kserver.kernels.shutdown_kernel(kernel.id)
    errors = errors_of(caplog)
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert kernel.id in errors[0].getMessage() and "cleanup failed" in errors[0].getMessage()
    assert "the node cannot be released" in (errors[0].exc_text or "")


async def test_a_failing_stop_is_logged_and_the_kernel_still_cleaned_up(kserver: Server, faults: Faults,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    kernel = await kserver.kernels.start_kernel("python3")
    pid = faults.made[-1].pid
    assert pid is not None
    faults.faults["wait"] = RuntimeError("lost contact with the node")
    with caplog.at_level(logging.ERROR, logger="carme.kernels.kernel"):
        await kserver.kernels.shutdown_kernel(kernel.id)
    errors = errors_of(caplog)
    assert len(errors) == 1 and "stopping its process failed" in errors[0].getMessage()
    assert "lost contact with the node" in (errors[0].exc_text or "")
    await await_until(lambda: not pid_alive(pid), "the kernel process to be gone")
    assert not list(kserver.kernels.runtime_dir.glob(f"kernel-{kernel.id}.json"))


async def test_a_kernel_that_never_answers_fails_with_its_own_error_launched_once(
        kserver: Server, faults: Faults) -> None:
    spec_dir = Path(os.environ["JUPYTER_DATA_DIR"]) / "kernels" / "silent"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps(
        {"argv": [sys.executable, "-c", "import time; time.sleep(120)", "{connection_file}"],
         "display_name": "Silent"}))
    timeout = kserver.kernels.options.kernel_info_timeout
    kserver.kernels.options.kernel_info_timeout = 2.0
    try:
        with pytest.raises(KernelInfoTimeoutError, match="did not answer kernel_info within 2.0 s"):
            await kserver.kernels.start_kernel("silent")
    finally:
        kserver.kernels.options.kernel_info_timeout = timeout
    assert faults.launches == 1  # new ports would not help a kernel that runs but does not answer
    pid = faults.made[-1].pid
    assert pid is not None
    await await_until(lambda: not pid_alive(pid), "the silent kernel's process to be gone")
    assert {p.name for p in kserver.kernels.runtime_dir.glob("kernel-*.json")} == \
        {f"kernel-{k.id}.json" for k in kserver.kernels}
    live_ports = {k.connection_info[name] for k in kserver.kernels for name in
                  ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")}
    assert kserver.kernels.ports.reserved == live_ports  # its ports are free again
