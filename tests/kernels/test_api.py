"""/api/kernels and /api/kernelspecs (+ /kernelspecs resources) through a real uvicorn."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from carme.events import KERNEL_ACTIONS_SCHEMA
from tests.processes import kernel_processes, pid_alive
from tests.serving import AUTH, Served


def test_kernelspecs_list_with_the_builtin_python3(http: httpx.Client) -> None:
    body = http.get("/api/kernelspecs").json()
    assert body["default"] == "python3"
    python3 = body["kernelspecs"]["python3"]
    assert python3["name"] == "python3"
    assert set(python3["spec"]) >= {"argv", "env", "display_name", "language", "interrupt_mode", "metadata"}
    assert "{connection_file}" in python3["spec"]["argv"]
    assert python3["resources"]["logo-svg"] == "/kernelspecs/python3/logo-svg.svg"
    logo = http.get(python3["resources"]["logo-svg"])
    assert logo.status_code == 200 and logo.content.lstrip().startswith(b"<")
    png = http.get(python3["resources"]["logo-64x64"])
    assert png.status_code == 200 and png.headers["cache-control"] == "max-age=2592000"
    assert http.get("/api/kernelspecs/python3").json() == python3


def test_a_broken_kernelspec_is_skipped_with_a_warning_naming_it(http: httpx.Client,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    kernels = Path(os.environ["JUPYTER_DATA_DIR"]) / "kernels"
    (kernels / "broken").mkdir(parents=True)
    (kernels / "broken" / "kernel.json").write_text("{not json")
    (kernels / "noargv").mkdir()
    (kernels / "noargv" / "kernel.json").write_text(json.dumps({"display_name": "No argv"}))
    (kernels / "echo").mkdir()
    (kernels / "echo" / "kernel.json").write_text(json.dumps(
        {"argv": ["echo", "{connection_file}"], "display_name": "Echo", "language": "text",
         "metadata": {"debugger": False}}))
    (kernels / "echo" / "logo-64x64.png").write_bytes(b"\x89PNG fake")
    (kernels / "echo" / "kernel.js").write_text("// js")
    (kernels / "echo" / "notes.txt").write_text("not a resource")
    with caplog.at_level(logging.WARNING, logger="carme.kernels.specs"):
        specs = http.get("/api/kernelspecs").json()["kernelspecs"]
    assert "broken" not in specs and "noargv" not in specs
    assert specs["echo"]["resources"] == {"logo-64x64": "/kernelspecs/echo/logo-64x64.png",
                                          "kernel.js": "/kernelspecs/echo/kernel.js"}
    assert specs["echo"]["spec"]["display_name"] == "Echo"
    warnings = " ".join(r.getMessage() for r in caplog.records)
    assert str(kernels / "broken" / "kernel.json") in warnings
    assert str(kernels / "noargv" / "kernel.json") in warnings and "argv" in warnings
    assert http.get("/kernelspecs/echo/kernel.js").text == "// js"
    assert http.get("/kernelspecs/echo/notes.txt").status_code == 404
    assert http.get("/kernelspecs/echo/kernel.json").status_code == 404
    assert http.get("/api/kernelspecs/broken").status_code == 404


@pytest.mark.parametrize("url", [
    "/api/kernelspecs/nope", "/kernelspecs/nope/logo-svg.svg", "/kernelspecs/python3/..%2F..%2F..%2Fetc%2Fpasswd",
    "/kernelspecs/python3/..%2Fkernel.json", "/kernelspecs/..%2F..%2Fetc/passwd", "/kernelspecs/python3/kernel.json",
])
def test_unknown_kernelspecs_and_resources_are_404(http: httpx.Client, url: str) -> None:
    response = http.get(url)
    assert response.status_code == 404
    assert "not found" in response.json()["message"].lower()


def test_kernel_lifecycle_over_rest(http: httpx.Client, kserved: Any) -> None:
    events: list[dict[str, Any]] = []
    remove = kserved.app.server.events.add_listener(events.append)
    try:
        created = http.post("/api/kernels")  # no body: the default kernelspec, in the root
        assert created.status_code == 201
        model = created.json()
        kernel_id = model["id"]
        assert created.headers["location"] == f"/api/kernels/{kernel_id}"
        assert set(model) == {"id", "name", "last_activity", "execution_state", "connections"}
        assert model["name"] == "python3" and model["connections"] == 0 and model["last_activity"].endswith("Z")
        assert kserved.app.server.kernels.get(kernel_id).cwd == kserved.app.server.root_dir
        assert kernel_id in [k["id"] for k in http.get("/api/kernels").json()]
        assert http.get(f"/api/kernels/{kernel_id}").json()["id"] == kernel_id
        assert http.get("/api/status").json()["kernels"] >= 1
        assert http.post(f"/api/kernels/{kernel_id}/interrupt").status_code == 204
        restarted = http.post(f"/api/kernels/{kernel_id}/restart")
        assert restarted.status_code == 200
        assert restarted.json()["id"] == kernel_id and restarted.json()["execution_state"] == "idle"
        assert http.delete(f"/api/kernels/{kernel_id}").status_code == 204
        gone = http.get(f"/api/kernels/{kernel_id}")
        assert gone.status_code == 404
        assert gone.json()["message"] == f"Kernel does not exist: {kernel_id}"
        assert http.delete(f"/api/kernels/{kernel_id}").status_code == 404
    finally:
        remove()
    actions = [(e["action"], e["status"]) for e in events
               if e["schema_id"] == KERNEL_ACTIONS_SCHEMA and e["kernel_id"] == kernel_id]
    assert actions == [("start", "success"), ("interrupt", "success"), ("restart", "success"),
                       ("shutdown", "success")]


@pytest.mark.parametrize(("method", "url"), [
    ("GET", "/api/kernels/not-a-uuid"), ("GET", f"/api/kernels/{uuid.uuid4()}"),
    ("DELETE", f"/api/kernels/{uuid.uuid4()}"), ("POST", f"/api/kernels/{uuid.uuid4()}/interrupt"),
    ("POST", f"/api/kernels/{uuid.uuid4()}/restart"), ("DELETE", "/api/kernels/a-b-c-d-e-f"), ("GET", "/api/kernels/a-b-c-d-%C3%A9"),
])
def test_unknown_kernel_ids_are_404(http: httpx.Client, method: str, url: str) -> None:
    response = http.request(method, url)
    assert response.status_code == 404
    assert response.json()["message"].startswith("Kernel does not exist: ")


@pytest.mark.parametrize(("body", "needle"), [
    ('{"name": 5}', "'name' must be a string"),
    ('{"path": ["x"]}', "'path' must be a string"),
    ('{"name": "nope"}', "nope"),
    ("[1, 2]", "JSON object"),
    ("{not json", "not valid JSON"),
    ('{"kernel_id": "../../x"}', "is not a UUID"),
])
def test_bad_kernel_starts_are_400(http: httpx.Client, body: str, needle: str) -> None:
    before = len(http.get("/api/kernels").json())
    response = http.post("/api/kernels", content=body)
    assert response.status_code == 400
    assert needle in response.json()["message"]
    assert len(http.get("/api/kernels").json()) == before


def test_a_kernelspec_whose_program_is_missing_gives_a_clear_error(http: httpx.Client, kserved: Any) -> None:
    spec_dir = Path(os.environ["JUPYTER_DATA_DIR"]) / "kernels" / "missing"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps(
        {"argv": ["/nonexistent/kernel-program", "{connection_file}"], "display_name": "Missing"}))
    response = http.post("/api/kernels", json={"name": "missing"})
    assert response.status_code == 500
    assert "/nonexistent/kernel-program" in response.json()["message"]
    session = http.post("/api/sessions", json={"path": "m.ipynb", "type": "notebook", "kernel": {"name": "missing"}})
    assert session.status_code == 501
    assert session.json()["short_message"] == "Error starting kernel missing"
    kernels = kserved.app.server.kernels
    runtime = kernels.runtime_dir
    assert {p.name for p in runtime.glob("kernel-*.json")} == {f"kernel-{k.id}.json" for k in kernels}
    live_ports = {k.connection_info[name] for k in kernels for name in
                  ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")}
    assert kernels.ports.reserved == live_ports  # nothing leaked by the failed starts


def test_a_client_chosen_kernel_id_is_used_and_an_existing_one_returned(http: httpx.Client) -> None:
    chosen = str(uuid.uuid4())
    created = http.post("/api/kernels", json={"kernel_id": chosen})
    assert created.status_code == 201 and created.json()["id"] == chosen
    try:
        again = http.post("/api/kernels", json={"kernel_id": chosen})
        assert again.status_code == 201 and again.json()["id"] == chosen
        assert [k["id"] for k in http.get("/api/kernels").json()].count(chosen) == 1
        # A session naming a running kernel by id shares it.
        session = http.post("/api/sessions", json={"path": "k.ipynb", "type": "notebook", "kernel": {"id": chosen}})
        assert session.status_code == 201 and session.json()["kernel"]["id"] == chosen
        assert http.post("/api/sessions", json={"path": "j.ipynb", "type": "notebook",
                                                "kernel": {"id": "x"}}).status_code == 400
    finally:
        assert http.delete(f"/api/kernels/{chosen}").status_code == 204


async def test_two_requests_starting_the_same_kernel_id_start_one_kernel(kserved: Served) -> None:
    """Both arrive while the kernel starts: one starts it, the other is refused (409) or, if it
    came after the start, given the running kernel; never a second process for that id."""
    chosen = str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=kserved.url, headers=AUTH, timeout=90) as http:
        answers = await asyncio.gather(*(http.post("/api/kernels", json={"kernel_id": chosen}) for _ in range(2)))
        try:
            assert sorted(a.status_code for a in answers) in ([201, 201], [201, 409]), [a.text for a in answers]
            refused = [a for a in answers if a.status_code == 409]
            assert all(chosen in a.json()["message"] for a in refused)
            assert [k["id"] for k in (await http.get("/api/kernels")).json()].count(chosen) == 1
            assert kernel_processes(chosen) == [kserved.app.server.kernels.get(chosen).pid]
        finally:
            assert (await http.delete(f"/api/kernels/{chosen}")).status_code == 204
    assert kernel_processes(chosen) == []
