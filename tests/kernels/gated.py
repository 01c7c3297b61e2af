"""A test plugin whose local provisioners wait at a gate the test opens: a kernel start held for
as long as the test needs, whatever the machine's speed (a real kernel process once opened)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from carme import hookimpl
from carme.kernels.provisioner import LocalProvisioner
from carme.kernels.specs import KernelSpec
from carme.server import Server


class GatedProvisioners:
    """Local provisioners whose launch says it ``arrived`` and waits for ``gate``, and whose final
    cleanup (not the one between restarts) waits for ``cleanup_gate``; ``refuse`` makes choosing
    one fail; ``slow_start`` is what they say of themselves (pending kernels)."""

    name = "gated"

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.gate = threading.Event()
        self.gate.set()
        self.cleanup_gate = threading.Event()
        self.cleanup_gate.set()
        self.refuse: Exception | None = None
        self.slow_start = False

    @hookimpl
    def carme_kernel_provisioner(self, server: Server, spec: KernelSpec) -> LocalProvisioner:
        if self.refuse is not None:
            raise self.refuse
        plugin = self

        class Gated(LocalProvisioner):
            slow_start = plugin.slow_start

            async def launch(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
                plugin.arrived.set()
                assert await asyncio.to_thread(plugin.gate.wait, 60), "the test never opened the gate"
                return await super().launch(*args, **kwargs)

            async def cleanup(self, restart: bool) -> None:
                if not restart:
                    assert await asyncio.to_thread(plugin.cleanup_gate.wait, 60), "the test never opened the cleanup"
                await super().cleanup(restart)

        return Gated(server.kernels.ports, server.kernels.runtime_dir, server.settings["ipykernel_no_drop"])
