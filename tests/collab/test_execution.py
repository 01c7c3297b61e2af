"""Server-side execution (jupyter-server-nbmodel's REST API) with a real ipykernel: outputs are
written into the shared document, every client sees them, and they reach the disk with no client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.collab.clients import eventually, joined, notebook
from tests.conftest import TOKEN
from tests.serving import Served


@pytest.fixture
async def http(collab: Served) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=collab.url, headers={"Authorization": f"token {TOKEN}"},
                                 timeout=120) as client:
        yield client


@pytest.fixture
async def kernel_id(http: httpx.AsyncClient) -> AsyncIterator[str]:
    response = await http.post("/api/kernels", json={"name": "python3"})
    assert response.status_code == 201, response.text
    yield response.json()["id"]
    await http.delete(f"/api/kernels/{response.json()['id']}")


async def finished(http: httpx.AsyncClient, location: str) -> httpx.Response:
    async def poll() -> httpx.Response | None:
        response = await http.get(location)
        return response if response.status_code != 202 else None

    end = asyncio.get_running_loop().time() + 60
    while (response := await poll()) is None:
        assert asyncio.get_running_loop().time() < end, "the execution did not finish"
        await asyncio.sleep(0.05)
    return response


async def test_cell_runs_on_the_server_outputs_in_the_document_and_on_disk(
        collab: Served, root: Path, http: httpx.AsyncClient, kernel_id: str) -> None:
    (root / "run.ipynb").write_text(json.dumps(notebook("print('hello'); print('world')\n6 * 7", "1/0")))
    async with joined(collab.ws_url, collab.url, "run.ipynb") as watcher:
        room = f"json:notebook:{watcher.session['fileId']}"
        response = await http.post(f"/api/kernels/{kernel_id}/execute",
                                   json={"cell_id": "cell-0", "document_id": room})
        assert response.status_code == 202, response.text
        location = response.headers["location"]
        assert location == f"/api/kernels/{kernel_id}/requests/{response.json()['request_id']}"

        def outputs() -> list[dict[str, Any]]:
            return watcher.doc.get()["cells"][0]["outputs"]

        await eventually(lambda: len(outputs()) == 2 and watcher.doc.ycells[0]["execution_state"] == "idle",
                         "the outputs in the watching client's document")
        assert outputs()[0] == {"output_type": "stream", "name": "stdout", "text": "hello\nworld\n"}
        assert outputs()[1]["data"]["text/plain"] == "42"
        result = await finished(http, location)
        assert result.status_code == 200
        body = result.json()
        assert body["status"] == "ok" and body["execution_count"] == 1
        assert json.loads(body["outputs"]) == outputs()
        # An error is an outcome, not a failure of the request.
        error = await http.post(f"/api/kernels/{kernel_id}/execute", json={"cell_id": "cell-1", "document_id": room})
        result = await finished(http, error.headers["location"])
        assert result.status_code == 200 and result.json()["status"] == "error"
        assert json.loads(result.json()["outputs"])[0]["ename"] == "ZeroDivisionError"
    # No client is connected any more: a run still lands in the document and on disk.
    again = await http.post(f"/api/kernels/{kernel_id}/execute", json={"cell_id": "cell-0", "document_id": room})
    await finished(http, again.headers["location"])

    def on_disk() -> dict[str, Any]:
        return json.loads((root / "run.ipynb").read_text())["cells"][0]

    await eventually(lambda: on_disk()["execution_count"] == 3 and len(on_disk()["outputs"]) == 2,
                     "the third run's outputs saved")


async def test_code_without_a_document_and_bad_requests(http: httpx.AsyncClient, kernel_id: str) -> None:
    response = await http.post(f"/api/kernels/{kernel_id}/execute", json={"code": "print(1 + 1)"})
    assert response.status_code == 202
    result = await finished(http, response.headers["location"])
    assert json.loads(result.json()["outputs"]) == [{"output_type": "stream", "name": "stdout", "text": "2\n"}]
    assert (await http.get(f"/api/kernels/{kernel_id}/requests/nope")).status_code == 404
    assert (await http.post("/api/kernels/nope/execute", json={"code": "1"})).status_code == 404
    bad = await http.post(f"/api/kernels/{kernel_id}/execute", json={"cell_id": "x"})
    assert bad.status_code == 400 and "document_id" in bad.json()["message"]
    assert (await http.get(f"/api/kernels/{kernel_id}/execute")).json() == {"kernel_id": kernel_id, "requests": []}
