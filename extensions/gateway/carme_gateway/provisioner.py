"""The gateway provisioner: carme's :class:`~carme.kernels.provisioner.Provisioner` for a kernel
that runs on a Jupyter Enterprise Gateway.

To carme the kernel is a local process whose messages travel through a transport: the
provisioner hands carme a :class:`~carme_gateway.bridge.Bridge` as the kernel's ``transport`` (and
its connection info, for the extensions' own sockets) and maps the process verbs onto the
gateway's REST API:

- ``launch`` starts the kernel there (``POST /api/kernels`` with ``{name, env}``), or restarts it
  (``POST .../restart``) when carme restarts it in place;
- ``send_signal(SIGINT)`` interrupts (``POST .../interrupt``); other signals and ``kill`` are left to
  ``cleanup``, which shuts the kernel down there (``DELETE``);
- ``poll`` is None while the gateway knows the kernel, an exit code once it is gone.

Its starts can be slow (a pod being scheduled): it says so (``slow_start``), so carme answers the
start request at once with the kernel ``starting`` unless the ``pending_kernels`` setting says
otherwise. A start cancelled while the gateway still launches (the kernel deleted meanwhile) lets
that launch finish in the background and shuts the kernel down there as soon as it has an id:
a gateway cannot cancel a launch, and nothing may be left running there.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path
from typing import Any

import zmq

from carme.kernels.connection import ConnectionInfo
from carme.kernels.provisioner import KernelLaunchError
from carme.kernels.specs import KernelSpec

from .bridge import Bridge
from .client import GatewayClient, GatewayError

log = logging.getLogger("carme.gateway.provisioner")

GONE_EXIT_CODE = 1  # poll()'s answer once the gateway has lost the kernel
ENV_VALUE_MAX = 4096  # EG refuses a start with a longer value (400)
SHUTDOWN_TIMEOUT = 10.0  # the DELETE at cleanup: the server's own shutdown must not hang on the gateway


def launch_error(exc: GatewayError, doing: str) -> KernelLaunchError:
    return KernelLaunchError(f"{doing}: {exc.message}", exc.status, exc.reason)


class GatewayProvisioner:
    """One kernel on the gateway (one provisioner per kernel, as carme makes them)."""

    slow_start = True  # carme's pending kernels: the start request is answered while it launches

    def __init__(self, client: GatewayClient, context: zmq.Context[Any], started_by: str | None = None) -> None:
        self.client = client
        self.started_by = started_by  # the name of the signed-in user who started the kernel
        self.config = client.config
        self.context = context
        self.remote_id: str | None = None  # the gateway's id, once started there
        self.bridge: Bridge | None = None
        self._asked_id: str | None = None  # the KERNEL_ID asked for, to clean up a start that failed midway

    @property
    def pid(self) -> int | None:
        return None  # not a local process

    @property
    def transport(self) -> Bridge | None:
        """The kernel's messages travel through the bridge (carme's kernel transport seam), not
        through local ZMQ sockets."""
        return self.bridge

    def start_env(self, kernel_id: str, cwd: Path, env: dict[str, str]) -> dict[str, str]:
        """The ``env`` of the start request: KERNEL_* (and ``allowed_envs``) of carme's own
        environment, the configured ones, the kernel's, then what the gateway needs from carme
        (``KERNEL_USERNAME`` by :meth:`GatewayConfig.kernel_username`)."""
        allowed = set(self.config.allowed_envs)

        def forwarded(source: dict[str, str] | os._Environ[str]) -> dict[str, str]:
            return {k: v for k, v in source.items() if k.startswith("KERNEL_") or k in allowed}

        sent = {**forwarded(os.environ), **self.config.env, **forwarded(env)}
        sent["KERNEL_USERNAME"] = self.config.kernel_username(self.started_by, env)
        # jupyter_server sends the launch timeout so the gateway waits as long as we do.
        sent["KERNEL_LAUNCH_TIMEOUT"] = str(int(self.config.launch_timeout))
        sent["KERNEL_ID"] = kernel_id  # the same id on both sides: logs and pod names match
        if self.config.send_working_dir:
            sent["KERNEL_WORKING_DIR"] = str(cwd)
        too_long = sorted(k for k, v in sent.items() if len(v) > ENV_VALUE_MAX)
        for name in too_long:
            log.warning("not sending %s to the gateway: longer than %d characters", name, ENV_VALUE_MAX)
            del sent[name]
        return sent

    async def launch(self, kernel_id: str, spec: KernelSpec, cwd: Path, env: dict[str, str], key: bytes,
                     reuse: ConnectionInfo | None = None) -> ConnectionInfo:
        if self.bridge is None:
            return await self._start(kernel_id, spec, cwd, env, key)
        bridge = self.bridge
        if bridge.lost is not None:
            raise launch_error(bridge.lost, f"cannot restart kernel {kernel_id}")
        assert self.remote_id is not None
        try:
            await self.client.restart_kernel(self.remote_id)
            await bridge.reconnect()
        except GatewayError as exc:
            if exc.status == 404:
                bridge.mark_lost(exc)
            raise launch_error(exc, f"the gateway could not restart kernel {kernel_id}") from None
        return bridge.info

    async def _start(self, kernel_id: str, spec: KernelSpec, cwd: Path, env: dict[str, str],
                     key: bytes) -> ConnectionInfo:
        self._asked_id = kernel_id
        launch = asyncio.ensure_future(self.client.start_kernel(spec.name, self.start_env(kernel_id, cwd, env)))
        try:
            model = await asyncio.shield(launch)
        except GatewayError as exc:
            raise launch_error(exc, f"the gateway could not start a {spec.name!r} kernel") from None
        except asyncio.CancelledError:
            if not launch.done():
                self._asked_id = None  # cleanup() has nothing to delete yet: the launch's end will
                self.client.reap(launch, kernel_id)
            raise
        self.remote_id = model["id"]
        log.info("kernel %s runs on the gateway as %s", kernel_id, self.remote_id)
        self.bridge = Bridge(self.client, self.context, self.remote_id, key, spec.name)
        try:
            await self.bridge.start()
        except GatewayError as exc:
            raise launch_error(exc, f"kernel {kernel_id} started on the gateway, but its channels") from None
        return self.bridge.info

    async def poll(self) -> int | None:
        if self.bridge is None:
            return 0  # shut down (or never started)
        return GONE_EXIT_CODE if self.bridge.lost is not None else None

    async def send_signal(self, signum: int) -> None:
        if signum == signal.SIGINT and self.remote_id is not None:
            await self.client.interrupt_kernel(self.remote_id)
        # SIGTERM / SIGKILL: the kernel is shut down on the gateway by cleanup().

    async def kill(self) -> None:
        return None  # cleanup() shuts it down on the gateway

    async def wait(self, timeout: float) -> int | None:
        # carme waits here after its shutdown_request, which the bridge keeps from the gateway:
        # stopping (or restarting) is done through the REST API by cleanup() (or launch()).
        return 0

    async def cleanup(self, restart: bool) -> None:
        if restart:
            return  # launch() restarts it on the gateway, keeping the bridge and its ports
        bridge, self.bridge = self.bridge, None
        remote_id, self.remote_id = self.remote_id or self._asked_id, None
        self._asked_id = None
        if bridge is not None:
            await bridge.close()
            if bridge.lost is not None and bridge.lost.status == 404:
                return  # nothing left there to shut down
        if remote_id is not None:
            try:
                await self.client.shutdown_kernel(remote_id, timeout=min(SHUTDOWN_TIMEOUT, self.config.request_timeout))
            except GatewayError as exc:
                log.warning("kernel %s may be left running on the gateway: %s", remote_id, exc.message)
