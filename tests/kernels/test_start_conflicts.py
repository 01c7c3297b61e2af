"""409 Conflict means one thing: the kernel id asked for is being started by another request.
Any other error while a kernel starts is not a conflict. Through a real uvicorn and real kernels;
the kernel starts are held at a gate so the two requests overlap whatever the machine's speed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.kernels.gated import GatedProvisioners
from tests.serving import Served, serve_isolated


@pytest.fixture(scope="module")
def gated() -> GatedProvisioners:
    return GatedProvisioners()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, gated: GatedProvisioners) -> Iterator[Served]:
    with serve_isolated(tmp_path_factory.mktemp("start-conflicts"), plugins=[gated]) as running:
        yield running


@pytest.fixture
def http(served: Served, gated: GatedProvisioners) -> Iterator[httpx.Client]:
    try:
        with served.client(timeout=90) as client:
            yield client
    finally:
        gated.gate.set()
        gated.refuse = None


@pytest.mark.parametrize("api", ["kernels", "sessions"])
def test_a_kernel_id_being_started_is_a_409(http: httpx.Client, gated: GatedProvisioners, api: str) -> None:
    kernel_id = str(uuid.uuid4())
    body: dict[str, Any] = {"kernel_id": kernel_id} if api == "kernels" else \
        {"path": f"{api}.ipynb", "type": "notebook", "kernel": {"id": kernel_id}}
    other: dict[str, Any] = body if api == "kernels" else {**body, "path": "other.ipynb"}
    gated.arrived.clear()
    gated.gate.clear()
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(http.post, f"/api/{api}", json=body)
        assert gated.arrived.wait(60), "the first start never reached the provisioner"
        second = http.post(f"/api/{api}", json=other)  # while the first is held at the gate
        gated.gate.set()
        created = first.result(timeout=90)
    assert second.status_code == 409, second.text
    assert second.json() == {"message": f"kernel {kernel_id} is already starting", "reason": "Conflict"}
    assert created.status_code == 201, created.text
    assert http.delete(f"/api/kernels/{kernel_id}").status_code == 204


@pytest.mark.parametrize("api", ["kernels", "sessions"])
def test_another_error_while_starting_is_not_a_conflict(http: httpx.Client, gated: GatedProvisioners,
                                                        api: str) -> None:
    gated.refuse = ValueError("no node can run this kernel")
    body = {} if api == "kernels" else {"path": "x.ipynb", "type": "notebook"}
    answer = http.post(f"/api/{api}", json=body)
    assert answer.status_code == 500, answer.text
    assert answer.json()["message"] == "Unhandled error"
