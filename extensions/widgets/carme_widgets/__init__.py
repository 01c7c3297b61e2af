"""carme-widgets: ipywidgets comm messaging through carme, server-held widget state, a comm API.

The service is published as ``server.services["widgets"]`` (:class:`WidgetsService`).
"""

from .comms import Comm, CommClosedError, CommMessage
from .service import UnknownKernelError, WidgetsService
from .state import STATE_MIMETYPE, WidgetModel, WidgetStore

__all__ = ["STATE_MIMETYPE", "Comm", "CommClosedError", "CommMessage", "UnknownKernelError", "WidgetModel",
           "WidgetStore", "WidgetsService"]
