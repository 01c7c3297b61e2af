"""The carme plugin of the widgets extension: settings, start-up, kernel subscriptions, routes."""

from __future__ import annotations

from carme.config import Setting
from carme.hooks import hookimpl


@hookimpl
def carme_register_settings() -> list[Setting]:
    return [
        Setting("save_state", bool, False,
                "On a notebook save through the contents API, write the live kernel's widget state into "
                "the notebook metadata (metadata.widgets), so static renderers show the widgets."),
    ]
