"""Loaded by the tests' Enterprise Gateway (on its PYTHONPATH), never by carme: a local process
proxy whose launch waits as a Kubernetes pod being scheduled does, held until the test writes the
kernel's gate file (``<gates>/<KERNEL_ID>``): ``go`` launches it, ``fail`` refuses the launch.
It writes ``<gates>/<KERNEL_ID>.arrived`` when the launch begins to wait, ``.launched`` once launched.
"""

import asyncio
import os

from enterprise_gateway.services.processproxies.processproxy import LocalProcessProxy


class HeldProcessProxy(LocalProcessProxy):
    async def launch_process(self, kernel_cmd, **kwargs):
        gate = os.path.join(self.proxy_config["gates"], self.kernel_id)
        with open(gate + ".arrived", "w"):
            pass
        while not os.path.exists(gate):
            await asyncio.sleep(0.05)  # the gateway's own loop: a pod is being scheduled
        with open(gate) as file:
            if file.read().strip() == "fail":
                raise RuntimeError("no node can run this kernel (the test refused its launch)")
        launched = await super().launch_process(kernel_cmd, **kwargs)
        with open(gate + ".launched", "w") as file:
            file.write(str(self.pid))
        return launched
