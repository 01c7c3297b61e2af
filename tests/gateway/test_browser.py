"""JupyterLab on carme, its kernels on the Enterprise Gateway: a new notebook runs 1+1 in Chromium."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.browser import browsing, new_notebook_runs, open_lab
from tests.serving import Served

from .conftest import gateway_settings
from .enterprise_gateway import EnterpriseGateway

# The first test to use the gateway may install it (uv, into bench/.anchor-gateway-venv) on a fresh machine.
pytestmark = pytest.mark.timeout(300)


def test_lab_runs_a_notebook_on_the_gateway(chromium: Any, serve_app: Callable[..., Served],
                                            enterprise_gateway: EnterpriseGateway) -> None:
    # pending kernels as by default on a gateway: JupyterLab's session starts with the kernel "starting"
    served = serve_app(extensions=["lab", "gateway"], settings=gateway_settings(enterprise_gateway, pending_kernels=None))
    with browsing(chromium, served, "/", "gateway") as flow:
        open_lab(flow)
        new_notebook_runs(flow)
        kernels = flow.api.get("api/kernels").json()
        assert len(kernels) == 1
        assert enterprise_gateway.kernel(kernels[0]["id"]).status_code == 200  # it ran there
