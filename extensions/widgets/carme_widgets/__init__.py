"""carme-widgets: ipywidgets comm messaging through carme, server-held widget state, a comm API."""

from .state import STATE_MIMETYPE, WidgetModel, WidgetStore

__all__ = ["STATE_MIMETYPE", "WidgetModel", "WidgetStore"]
