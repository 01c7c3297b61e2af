"""The built-in kernels plugin: every kernel setting, start-up/shutdown, the local provisioner,
the /api/kernels and /api/kernelspecs routes and the kernel websocket.

All kernel-related settings live here, the websocket relay's too (it reads them from
``server.settings``), so there is one place to look them up.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from starlette.routing import BaseRoute, WebSocketRoute

from ..api import kernels as kernels_api
from ..api.kernel_ws import KernelWebsockets
from ..api.permissions import authorized
from ..config import Setting
from ..hooks import hookimpl
from ..kernels.manager import KernelManager
from ..kernels.provisioner import Provisioner
from ..kernels.specs import KernelSpec, KernelSpecManager

if TYPE_CHECKING:
    from ..auth import User
    from ..server import Server

MiB = 1024 * 1024


@hookimpl
def carme_register_settings() -> list[Setting]:
    return [
        Setting("default_kernel_name", str, "python3", "Kernelspec used when a client does not name one"),
        Setting("kernel_info_timeout", float, 60.0,
                "Seconds to wait for a kernel to answer kernel_info after a start or restart", minimum=0),
        Setting("shutdown_wait_time", float, 5.0,
                "Seconds a kernel gets to stop after shutdown_request (SIGTERM at half time, then SIGKILL)", minimum=0),
        Setting("restart_limit", int, 5, "Automatic restarts in a row before a dying kernel is declared dead",
                minimum=0),
        Setting("pending_kernels", bool, None,
                "Answer a kernel start (POST /api/kernels, /api/sessions) at once, with the kernel listed as "
                "'starting' until it answers (jupyter_server's use_pending_kernels): true for every kernel, "
                "false for none, null: for kernels whose provisioner starts slowly (the gateway's)",
                nullable=True),
        Setting("kernel_poll_interval", float, 3.0, "Seconds between checks that a kernel process is alive", minimum=0),
        Setting("kernel_heartbeat_timeout", float, 30.0,
                "A kernel that does not answer its heartbeat for this many seconds is restarted (0: off)", minimum=0),
        Setting("cull_idle_timeout", float, 0.0, "Shut down kernels idle for this many seconds (0: never)", minimum=0),
        Setting("cull_interval", float, 300.0, "Seconds between checks for idle kernels", minimum=0),
        Setting("cull_connected", bool, False, "Also cull idle kernels that have open connections"),
        Setting("cull_busy", bool, False, "Also cull kernels that are busy"),
        Setting("websocket_max_message_size", int, 512 * MiB,
                "Largest message (bytes) a client may send on a kernel websocket", minimum=0),
        Setting("buffer_offline_max_messages", int, 10_000,
                "Most messages kept for a websocket client that went away (oldest dropped first)", minimum=0),
        Setting("buffer_offline_max_bytes", int, 256 * MiB,
                "Most bytes of messages kept for a websocket client that went away (oldest dropped first)", minimum=0),
        Setting("buffer_offline_messages", bool, True,
                "Keep a kernel's messages while no client is connected, for a client that reconnects"),
        Setting("iopub_msg_rate_limit", float, 0.0,
                "Most iopub messages per second sent to one client before output is paused (0: no limit)", minimum=0),
        Setting("iopub_data_rate_limit", float, 0.0,
                "Most iopub stream bytes per second sent to one client before output is paused (0: no limit)",
                minimum=0),
        Setting("ipykernel_no_drop", bool, True,
                "Start ipykernel kernels (argv '-m ipykernel_launcher') so their iopub never drops output "
                "under load; the kernel is unchanged otherwise"),
        Setting("rate_limit_window", float, 3.0, "Seconds over which the iopub rates are averaged", minimum=0),
        Setting("read_only_comms", bool, False,
                "Let a user who may read but not execute on kernels send comm messages (interact with "
                "widgets, whose callbacks run code in the kernel); off: such a user only watches"),
    ]


@hookimpl(trylast=True)
def carme_kernel_spec_manager(server: Server) -> KernelSpecManager:
    return KernelSpecManager(server.settings["default_kernel_name"])


@hookimpl
def carme_startup(server: Server) -> None:
    server.kernelspecs = server.hook.carme_kernel_spec_manager(server=server)
    server.kernels = KernelManager(server, server.kernelspecs)


@hookimpl
async def carme_shutdown(server: Server) -> None:
    # Websocket clients first (they are told the server is going away), then the kernels.
    await server.kernel_websockets.close()
    await asyncio.shield(server.kernels.shutdown_all())


@hookimpl
def carme_kernel_provisioner(server: Server, spec: KernelSpec, user: User | None) -> Provisioner:
    return server.kernels.local_provisioner()


@hookimpl
def carme_register_routes(server: Server) -> list[BaseRoute]:
    endpoint = KernelWebsockets(server)
    server.kernel_websockets = endpoint
    return [*kernels_api.routes(), WebSocketRoute("/api/kernels/{kernel_id}/channels",
                                                     authorized("read", "kernels")(endpoint))]


@hookimpl
def carme_register_api_paths(server: Server) -> list[str]:
    return ["/kernelspecs/"]  # kernelspec resources (logos); /api/ is the server plugin's
