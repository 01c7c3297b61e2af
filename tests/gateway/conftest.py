"""Fixtures of the gateway tests: one real Enterprise Gateway per test session, carme in front of it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.serving import Served, serve_isolated

from .enterprise_gateway import USER, EnterpriseGateway, running_gateway

# Fast monitoring, as the kernel tests have it, and quick reconnects to a lost gateway. Starts
# answered once the kernel runs (these tests are about kernels that run; test_pending.py covers
# the default, the start answered while the gateway launches).
FAST = {"kernel_poll_interval": 0.2, "kernel_info_timeout": 60.0, "shutdown_wait_time": 4.0, "pending_kernels": False}
TAG = "made-by-carme"


def gateway_settings(gateway: EnterpriseGateway, **more: Any) -> dict[str, Any]:
    return {**FAST, "gateway.url": gateway.url, "gateway.username": USER, "gateway.env": {"KERNEL_TEST_TAG": TAG},
            "gateway.retry_interval": 0.2, "gateway.retry_max": 3, **more}


@pytest.fixture(scope="session")
def enterprise_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnterpriseGateway]:
    with running_gateway(tmp_path_factory.mktemp("enterprise-gateway")) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def gserved(enterprise_gateway: EnterpriseGateway, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """carme (gateway and widgets extensions) whose kernels run on the session's gateway."""
    with serve_isolated(tmp_path_factory.mktemp("carme-on-gateway"), extensions=["gateway", "widgets"],
                        settings=gateway_settings(enterprise_gateway)) as running:
        yield running


@pytest.fixture
def http(gserved: Served) -> Iterator[httpx.Client]:
    """A REST client of the module's carme (test_kernels.py keeps one per module for its kernel)."""
    with gserved.client(timeout=120) as c:
        yield c
