"""carme-gateway: carme's kernels on a Jupyter Enterprise Gateway (kernels on a cluster).

With ``gateway.url`` set, /api/kernelspecs lists the gateway's specs and every kernel is started,
interrupted, restarted and shut down there, through carme's provisioner hook: to the rest of carme
(the websocket relay, sessions, culling, widgets, dashboards) a remote kernel is an ordinary
:class:`carme.kernels.kernel.Kernel`. ``server.services["gateway"]`` is the app's
:class:`GatewayService`. Settings live in the ``gateway`` section (:mod:`carme_gateway.settings`).
"""

from .client import GatewayClient, GatewayError
from .plugin import GatewayService
from .settings import GatewayConfig

__all__ = ["GatewayClient", "GatewayConfig", "GatewayError", "GatewayService"]
