"""/api/sessions through a real uvicorn: JupyterLab's create-then-PATCH flow, kernel changes,
delete, and bad input."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest


def test_jupyterlab_placeholder_path_then_patch_flow(http: httpx.Client, kserved: Any) -> None:
    server = kserved.app.server
    placeholder = f"dir/{uuid.uuid4()}"
    created = http.post("/api/sessions", content=(
        f'{{"path": "{placeholder}", "type": "notebook", "name": "nb.ipynb", "kernel": {{"name": "python3"}}}}'),
        headers={"Content-Type": "text/plain;charset=UTF-8"})  # as JupyterLab sends it
    assert created.status_code == 201
    model = created.json()
    session_id, kernel_id = model["id"], model["kernel"]["id"]
    assert created.headers["location"] == f"/api/sessions/{session_id}"
    assert set(model) == {"id", "path", "name", "type", "kernel", "notebook"}
    assert (model["path"], model["name"], model["type"]) == (placeholder, "nb.ipynb", "notebook")
    assert model["notebook"] == {"path": placeholder, "name": "nb.ipynb"}
    assert model["kernel"]["name"] == "python3" and model["kernel"]["execution_state"] == "idle"
    kernel = server.kernels.get(kernel_id)
    assert kernel.cwd == server.root_dir / "dir"
    assert kernel.env["JPY_SESSION_NAME"] == str(server.root_dir / "dir" / "nb.ipynb")
    # as jupyter_client writes it: the notebook's path in the connection file
    connection = json.loads(kernel.provisioner.connection_file.read_text())
    assert connection["jupyter_session"] == str(server.root_dir / "dir" / "nb.ipynb")
    try:
        again = http.post("/api/sessions", json={"path": placeholder, "type": "notebook", "kernel": {"name": "python3"}})
        assert again.status_code == 201 and again.json()["id"] == session_id

        patched = http.patch(f"/api/sessions/{session_id}", json={"path": "dir/nb.ipynb", "id": session_id})
        assert patched.status_code == 200
        assert patched.json()["path"] == "dir/nb.ipynb" and patched.json()["kernel"]["id"] == kernel_id
        renamed = http.patch(f"/api/sessions/{session_id}", json={"name": "nb2.ipynb", "id": session_id}).json()
        assert renamed["name"] == "nb2.ipynb" and renamed["notebook"] == {"path": "dir/nb.ipynb", "name": "nb2.ipynb"}
        assert kernel.env["JPY_SESSION_NAME"] == str(server.root_dir / "dir" / "nb2.ipynb")

        assert http.get(f"/api/sessions/{session_id}").json() == renamed
        assert [s["id"] for s in http.get("/api/sessions").json()] == [session_id]
        retyped = http.patch(f"/api/sessions/{session_id}", json={"type": "console"}).json()
        assert retyped["type"] == "console" and "notebook" not in retyped
    finally:
        assert http.delete(f"/api/sessions/{session_id}").status_code == 204
    assert http.get(f"/api/kernels/{kernel_id}").status_code == 404  # its kernel was shut down
    assert http.get(f"/api/sessions/{session_id}").status_code == 404
    assert http.delete(f"/api/sessions/{session_id}").status_code == 404
    assert http.get("/api/sessions").json() == []


def test_changing_the_kernel_of_a_session_shuts_the_old_one_down(http: httpx.Client) -> None:
    session = http.post("/api/sessions", json={"path": "a.ipynb", "type": "notebook", "name": "a.ipynb"}).json()
    first = session["kernel"]["id"]
    other = http.post("/api/kernels", json={}).json()["id"]
    try:
        # Attach an existing kernel by id.
        moved = http.patch(f"/api/sessions/{session['id']}", json={"kernel": {"id": other}})
        assert moved.status_code == 200 and moved.json()["kernel"]["id"] == other
        assert http.get(f"/api/kernels/{first}").status_code == 404
        # A new kernel by name.
        renewed = http.patch(f"/api/sessions/{session['id']}", json={"kernel": {"name": "python3"}}).json()
        assert renewed["kernel"]["id"] not in (first, other)
        assert http.get(f"/api/kernels/{other}").status_code == 404
        unknown = http.patch(f"/api/sessions/{session['id']}", json={"kernel": {"id": str(uuid.uuid4())}})
        assert unknown.status_code == 400 and unknown.json()["message"].startswith("No such kernel: ")
        missing = http.patch(f"/api/sessions/{session['id']}", json={"kernel": {"name": "nope"}})
        assert missing.status_code == 501 and missing.json()["short_message"] == "nope not found"
        assert http.get(f"/api/sessions/{session['id']}").json()["kernel"]["id"] == renewed["kernel"]["id"]
    finally:
        assert http.delete(f"/api/sessions/{session['id']}").status_code == 204


def test_a_session_can_share_a_running_kernel_and_vanishes_with_it(http: httpx.Client) -> None:
    kernel_id = http.post("/api/kernels").json()["id"]
    session = http.post("/api/sessions", json={"path": "c.py", "type": "console", "kernel": {"id": kernel_id}})
    assert session.status_code == 201 and session.json()["kernel"]["id"] == kernel_id
    assert "notebook" not in session.json() and session.json()["name"] is None
    assert http.delete(f"/api/kernels/{kernel_id}").status_code == 204
    assert http.get(f"/api/sessions/{session.json()['id']}").status_code == 404
    assert http.get("/api/sessions").json() == []


@pytest.mark.parametrize(("body", "status", "needle"), [
    ("", 400, "No JSON data provided"),
    ('{"type": "notebook"}', 400, "Missing field in JSON data: path"),
    ('{"path": "x.ipynb"}', 400, "Missing field in JSON data: type"),
    ('{"path": 5, "type": "notebook"}', 400, "'path' must be a string"),
    ('{"path": "x.ipynb", "type": "notebook", "kernel": "python3"}', 400, "'kernel' must be an object"),
    ('{"path": "x.ipynb", "type": "notebook", "kernel": {"name": 3}}', 400, "'kernel.name' must be a string"),
    ('{"path": "x.ipynb", "type": "notebook", "kernel": {"name": "nope"}}', 501, "The 'nope' kernel is not available"),
    ("[]", 400, "JSON object"),
])
def test_bad_session_requests(http: httpx.Client, body: str, status: int, needle: str) -> None:
    response = http.post("/api/sessions", content=body)
    assert response.status_code == status
    assert needle in response.json()["message"]
    assert http.get("/api/sessions").json() == []


@pytest.mark.parametrize(("method", "url"), [
    ("GET", "/api/sessions/nope"), ("GET", f"/api/sessions/{uuid.uuid4()}"),
    ("PATCH", f"/api/sessions/{uuid.uuid4()}"), ("DELETE", f"/api/sessions/{uuid.uuid4()}"),
])
def test_unknown_sessions_are_404(http: httpx.Client, method: str, url: str) -> None:
    response = http.request(method, url, json={"path": "x"} if method == "PATCH" else None)
    assert response.status_code == 404
    assert response.json()["message"].startswith("Session not found")
