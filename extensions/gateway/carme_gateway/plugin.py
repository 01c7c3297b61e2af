"""The ``gateway`` extension's hook implementations: entry point ``carme_gateway.plugin``.

Enabled without ``gateway.url`` it does nothing: kernels stay local (``./dev serve`` enables every
bundled extension, so this is only logged at info level).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from carme.config import Setting
from carme.hooks import hookimpl
from carme.kernels.provisioner import Provisioner
from carme.kernels.specs import KernelSpec, KernelSpecManager

from . import settings
from .client import GatewayClient
from .provisioner import GatewayProvisioner
from .settings import GatewayConfig
from .specs import GatewaySpecManager

if TYPE_CHECKING:
    from carme.auth import User
    from carme.server import Server

log = logging.getLogger("carme.gateway")

SERVICE = "gateway"


class GatewayService:
    """One app's gateway: its config, REST client and kernelspec resource cache."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.client = GatewayClient(config)
        self.cache_dir = Path(tempfile.mkdtemp(prefix="carme-gateway-"))

    async def close(self) -> None:
        await self.client.close()
        await asyncio.to_thread(shutil.rmtree, self.cache_dir, True)


def service_of(server: Server) -> GatewayService | None:
    """The app's gateway service, made on first use (the kernelspec hook is asked before this
    extension's own start-up); None while ``gateway.url`` is not set."""
    service = server.services.get(SERVICE)
    if service is None and server.settings["gateway.url"]:
        service = server.services[SERVICE] = GatewayService(GatewayConfig.from_settings(server.settings))
        log.info("kernels run on Jupyter Enterprise Gateway at %s (as user %r unless a signed-in user starts them)",
                 service.config.url, service.config.default_username)
    return service


@hookimpl
def carme_register_settings() -> list[Setting]:
    return settings.declared()


@hookimpl
def carme_kernel_spec_manager(server: Server) -> KernelSpecManager | None:
    service = service_of(server)
    if service is None:
        return None
    return GatewaySpecManager(service.client, asyncio.get_running_loop(), server.settings["default_kernel_name"],
                              service.cache_dir)


@hookimpl
def carme_kernel_provisioner(server: Server, spec: KernelSpec, user: User | None) -> Provisioner | None:
    service = service_of(server)
    if service is None:
        return None
    return GatewayProvisioner(service.client, server.kernels.context, user.username if user else None)


@hookimpl
def carme_startup(server: Server) -> None:
    if service_of(server) is None:
        log.info("the gateway extension is enabled but gateway.url is not set: kernels run locally")


@hookimpl(tryfirst=True)  # shutdown runs in reverse: tryfirst makes this the last, after carme's kernels stopped
async def carme_shutdown(server: Server) -> None:
    service = server.services.pop(SERVICE, None)
    if isinstance(service, GatewayService):
        await service.close()
