"""The session endpoint and the file-ID endpoints, as jupyter-server-ydoc and jupyter_server_fileid answer."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.collab.clients import put_session
from tests.serving import Served


@pytest.fixture
def http(collab: Served) -> httpx.Client:
    from tests.conftest import TOKEN

    with httpx.Client(base_url=collab.url, headers={"Authorization": f"token {TOKEN}"}, timeout=60) as c:
        yield c


async def test_session_201_then_200_same_ids(collab: Served) -> None:
    first = await put_session(collab.url, "demo.ipynb")
    assert first.status_code == 201, first.text
    body = first.json()
    assert set(body) == {"format", "type", "fileId", "sessionId"}
    assert (body["format"], body["type"]) == ("json", "notebook")
    second = await put_session(collab.url, "demo.ipynb")
    assert second.status_code == 200
    assert second.json() == body


async def test_session_of_a_text_file_and_an_encoded_path(collab: Served, root: Path) -> None:
    (root / "sub dir").mkdir()
    (root / "sub dir" / "notes.txt").write_text("hello\n")
    response = await put_session(collab.url, "sub%20dir%2Fnotes.txt", "file", "text")
    assert response.status_code == 201, response.text
    assert response.json()["type"] == "file"


@pytest.mark.parametrize(("path", "body", "status", "words"), [
    ("missing.ipynb", {"format": "json", "type": "notebook"}, 404, "missing.ipynb"),
    ("demo.ipynb", {"format": "yaml", "type": "notebook"}, 400, "format"),
    ("demo.ipynb", {"format": "text", "type": "notebook"}, 400, "json"),
    ("demo.ipynb", {"type": "notebook"}, 400, "format"),
    ("", {"format": "json", "type": "notebook"}, 400, "directory"),
])
def test_session_bad_requests_name_the_problem(http: httpx.Client, path: str, body: dict[str, str], status: int,
                                                words: str) -> None:
    response = http.put(f"/api/collaboration/session/{path}", json=body)
    assert response.status_code == status, response.text
    error = response.json()
    assert set(error) == {"message", "reason"}
    assert words in error["message"]


def test_session_needs_authentication(collab: Served) -> None:
    response = httpx.put(collab.url + "/api/collaboration/session/demo.ipynb",
                         json={"format": "json", "type": "notebook"})
    assert response.status_code == 403


def test_session_outside_the_root_is_refused(http: httpx.Client) -> None:
    response = http.put("/api/collaboration/session/..%2F..%2Fetc%2Fpasswd", json={"format": "text", "type": "file"})
    assert response.status_code in (400, 404), response.text
    assert "message" in response.json()


def test_fileid_endpoints(http: httpx.Client) -> None:
    assert http.get("/api/fileid/id", params={"path": "demo.ipynb"}).status_code == 404
    file_id = http.put("/api/collaboration/session/demo.ipynb", json={"format": "json", "type": "notebook"}).json()["fileId"]
    assert http.get("/api/fileid/id", params={"path": "demo.ipynb"}).json() == {"id": file_id, "path": "demo.ipynb"}
    assert http.get("/api/fileid/path", params={"id": file_id}).json() == {"id": file_id, "path": "demo.ipynb"}
    assert http.get("/api/fileid/path", params={"id": "nope"}).status_code == 404
    missing = http.get("/api/fileid/path")
    assert missing.status_code == 400 and "id" in missing.json()["message"]
