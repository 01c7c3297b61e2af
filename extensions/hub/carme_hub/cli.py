"""``carme singleuser``: what a hub's spawner runs (``c.Spawner.cmd = ["carme", "singleuser"]``).

Everything comes from the spawner's ``JUPYTERHUB_*`` environment (the hub extension's
:func:`~carme_hub.environment.settings_from_environ`, applied by carme's settings layers, so plain
``carme serve`` under a hub does the same); this command only insists that the environment is
there. Hubs often pass jupyter_server flags in ``Spawner.args`` (``--ServerApp.default_url=/lab``,
``--debug``): they are accepted and logged, and the ``default_url`` ones are honoured.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

from carme.cli import Command, add_server_arguments, app_from_args, serve_app
from carme.config import ConfigError

from .environment import api_token

log = logging.getLogger("carme.hub.cli")


def _jupyter_flags(flags: list[str]) -> dict[str, Any]:
    """Settings from the jupyter_server flags carme understands; the others are logged."""
    settings: dict[str, Any] = {}
    for flag in flags:
        key, _, value = flag.lstrip("-").partition("=")
        if key.rsplit(".", 1)[-1] == "default_url" and value:
            settings["default_url"] = value
        elif key == "debug":
            logging.getLogger("carme").setLevel(logging.DEBUG)
        else:
            log.info("ignoring the jupyter_server flag %s", flag)
    return settings


def run(args: argparse.Namespace) -> int:
    for name in ("JUPYTERHUB_SERVICE_URL", "JUPYTERHUB_API_URL"):
        if not os.environ.get(name):
            raise ConfigError(f"{name} is not set: `carme singleuser` is started by a JupyterHub spawner, "
                              "which sets the JUPYTERHUB_* environment (use `carme serve` otherwise)")
    if not api_token():
        raise ConfigError("JUPYTERHUB_API_TOKEN is not set: the hub's spawner sets it")
    app = app_from_args(args, settings=_jupyter_flags(args.unknown_args))
    return serve_app(app, args.log_level)


COMMAND = Command("singleuser", "serve as a JupyterHub single-user server (started by the hub's spawner)",
                  run, add_server_arguments, accepts_unknown_args=True)
