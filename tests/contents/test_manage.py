"""POST (untitled, copy), PATCH (rename), DELETE and the checkpoint routes."""

from __future__ import annotations

from pathlib import Path

import httpx

from .conftest import Factory, notebook, write_notebook


def test_untitled_names(client: httpx.Client, root: Path) -> None:
    made = []
    for body in ({"type": "notebook"}, {"type": "notebook"}, {"type": "file", "ext": ".py"},
                 {"type": "file", "ext": ".py"}, {"type": "directory"}, {"type": "directory"}, None,
                 {"ext": ".ipynb"}, {"type": "banana"}):
        response = client.post("/api/contents", json=body) if body is not None else client.post("/api/contents")
        assert response.status_code == 201, response.text
        assert response.headers["location"] == "/api/contents/" + response.json()["path"].replace(" ", "%20")
        made.append(response.json()["path"])
    assert made == ["Untitled.ipynb", "Untitled1.ipynb", "untitled.py", "untitled1.py", "Untitled Folder",
                    "Untitled Folder 1", "untitled", "Untitled2.ipynb", "untitled1"]
    assert (root / "Untitled Folder 1").is_dir()
    nb = client.get("/api/contents/Untitled.ipynb").json()["content"]
    assert nb == {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def test_untitled_in_subdir_and_missing_dir(client: httpx.Client, root: Path) -> None:
    (root / "d").mkdir()
    assert client.post("/api/contents/d", json={"type": "notebook"}).json()["path"] == "d/Untitled.ipynb"
    response = client.post("/api/contents/nowhere", json={"type": "notebook"})
    assert response.status_code == 404 and "nowhere" in response.json()["message"]


def test_post_to_file_and_bad_bodies(client: httpx.Client, root: Path) -> None:
    (root / "a.txt").write_text("x")
    response = client.post("/api/contents/a.txt", json={"type": "file"})
    assert response.status_code == 400 and "use PUT" in response.json()["message"]
    assert client.post("/api/contents", content=b"{oops").status_code == 400
    assert client.post("/api/contents", json=[1]).status_code == 400
    assert client.post("/api/contents", json={"ext": 5}).status_code == 400
    assert client.post("/api/contents", json={"copy_from": 5}).status_code == 400


def test_copy_names(client: httpx.Client, root: Path) -> None:
    write_notebook(root / "b.ipynb", notebook("x"))
    (root / "t.tar.gz").write_bytes(b"\x1f\x8b")
    (root / "d").mkdir()
    paths = [client.post("/api/contents", json={"copy_from": "b.ipynb"}).json()["path"] for _ in range(2)]
    assert paths == ["b-Copy1.ipynb", "b-Copy2.ipynb"]
    # Copying a copy does not stack suffixes.
    assert client.post("/api/contents", json={"copy_from": "b-Copy1.ipynb"}).json()["path"] == "b-Copy3.ipynb"
    assert client.post("/api/contents", json={"copy_from": "t.tar.gz"}).json()["path"] == "t-Copy1.tar.gz"
    response = client.post("/api/contents/d", json={"copy_from": "b.ipynb"})
    assert response.status_code == 201 and response.json()["path"] == "d/b.ipynb"
    assert (root / "d" / "b.ipynb").read_bytes() == (root / "b.ipynb").read_bytes()
    assert client.post("/api/contents", json={"copy_from": "missing.txt"}).status_code == 404


def test_copy_directory_and_size_limit(server_with: Factory, root: Path) -> None:
    client = server_with(max_copy_folder_size_mb=1)
    (root / "src").mkdir()
    (root / "src" / "a.txt").write_text("a")
    response = client.post("/api/contents", json={"copy_from": "src"})
    assert response.status_code == 201 and response.json()["path"] == "src-Copy1"
    assert (root / "src-Copy1" / "a.txt").read_text() == "a"
    (root / "big").mkdir()
    (root / "big" / "blob").write_bytes(b"\0" * (2 * 1024 * 1024))
    response = client.post("/api/contents", json={"copy_from": "big"})
    assert response.status_code == 400 and "larger than 1MB" in response.json()["message"]
    assert not (root / "big-Copy1").exists()


def test_rename(client: httpx.Client, root: Path) -> None:
    write_notebook(root / "a.ipynb", notebook("x"))
    client.post("/api/contents/a.ipynb/checkpoints")
    (root / "d").mkdir()
    response = client.patch("/api/contents/a.ipynb", json={"path": "d/b.ipynb"})
    assert response.status_code == 200
    assert response.json()["path"] == "d/b.ipynb" and response.headers["location"] == "/api/contents/d/b.ipynb"
    assert (root / "d" / "b.ipynb").exists() and not (root / "a.ipynb").exists()
    # The checkpoint moved with the file.
    assert (root / "d" / ".ipynb_checkpoints" / "b-checkpoint.ipynb").exists()
    assert client.get("/api/contents/d/b.ipynb/checkpoints").json()[0]["id"] == "checkpoint"


def test_rename_errors(client: httpx.Client, root: Path) -> None:
    (root / "a.txt").write_text("a")
    (root / "b.txt").write_text("b")
    response = client.patch("/api/contents/a.txt", json={"path": "b.txt"})
    assert response.status_code == 409 and "b.txt" in response.json()["message"]
    assert (root / "b.txt").read_text() == "b" and (root / "a.txt").read_text() == "a"
    assert client.patch("/api/contents/missing.txt", json={"path": "c.txt"}).status_code == 404
    assert client.patch("/api/contents/a.txt", json={"path": 3}).status_code == 400
    assert client.patch("/api/contents/a.txt", content=b"").status_code == 400
    assert client.patch("/api/contents/a.txt", content=b"nope").status_code == 400
    assert client.patch("/api/contents/a.txt", json={"path": ".a.txt"}).status_code == 400
    assert client.patch("/api/contents/a.txt", json={"path": "../a.txt"}).status_code == 404
    assert client.patch("/api/contents/a.txt", json={"path": "nodir/a.txt"}).status_code == 404
    # Same path: nothing to do, the model comes back.
    assert client.patch("/api/contents/a.txt", json={"path": "a.txt"}).json()["path"] == "a.txt"
    assert sorted(p.name for p in root.iterdir()) == ["a.txt", "b.txt"]


def test_delete(client: httpx.Client, root: Path) -> None:
    write_notebook(root / "n.ipynb", notebook("x"))
    client.post("/api/contents/n.ipynb/checkpoints")
    assert client.delete("/api/contents/n.ipynb").status_code == 204
    assert not (root / "n.ipynb").exists()
    assert not (root / ".ipynb_checkpoints" / "n-checkpoint.ipynb").exists()
    (root / "d" / "e").mkdir(parents=True)
    (root / "d" / "e" / "f.txt").write_text("x")
    assert client.delete("/api/contents/d").status_code == 204
    assert not (root / "d").exists()
    assert client.delete("/api/contents/d").status_code == 404
    response = client.delete("/api/contents")
    assert response.status_code == 400 and "root" in response.json()["message"]
    assert client.delete("/api/contents/").status_code == 400


def test_delete_nonempty_dir_refused_when_configured(server_with: Factory, root: Path) -> None:
    client = server_with(always_delete_dir=False)
    (root / "d").mkdir()
    (root / "d" / "f").write_text("x")
    response = client.delete("/api/contents/d")
    assert response.status_code == 400 and "not empty" in response.json()["message"]
    assert (root / "d" / "f").exists()
    (root / "e" / ".ipynb_checkpoints").mkdir(parents=True)
    assert client.delete("/api/contents/e").status_code == 204  # only checkpoints: empty enough


def test_delete_symlink_removes_link_only(client: httpx.Client, root: Path) -> None:
    (root / "real").mkdir()
    (root / "real" / "keep.txt").write_text("x")
    (root / "link").symlink_to(root / "real")
    assert client.delete("/api/contents/link").status_code == 204
    assert not (root / "link").exists() and (root / "real" / "keep.txt").exists()


def test_checkpoints_round_trip(client: httpx.Client, root: Path) -> None:
    (root / "a.txt").write_text("v1")
    assert client.get("/api/contents/a.txt/checkpoints").json() == []
    response = client.post("/api/contents/a.txt/checkpoints")
    assert response.status_code == 201
    checkpoint = response.json()
    assert set(checkpoint) == {"id", "last_modified"} and checkpoint["id"] == "checkpoint"
    assert response.headers["location"] == "/api/contents/a.txt/checkpoints/checkpoint"
    client.put("/api/contents/a.txt", json={"type": "file", "format": "text", "content": "v2"})
    assert (root / "a.txt").read_text() == "v2"
    assert client.post("/api/contents/a.txt/checkpoints/checkpoint").status_code == 204
    assert (root / "a.txt").read_text() == "v1"
    assert client.get("/api/contents/a.txt/checkpoints").json()[0]["id"] == "checkpoint"
    assert client.delete("/api/contents/a.txt/checkpoints/checkpoint").status_code == 204
    assert client.get("/api/contents/a.txt/checkpoints").json() == []
    assert client.delete("/api/contents/a.txt/checkpoints/checkpoint").status_code == 404
    assert client.post("/api/contents/a.txt/checkpoints/checkpoint").status_code == 404
    assert client.post("/api/contents/a.txt/checkpoints/other").status_code == 404
    assert client.post("/api/contents/missing.txt/checkpoints").status_code == 404
    (root / "d").mkdir()
    assert client.post("/api/contents/d/checkpoints").status_code == 400
    # A root file named "checkpoints" is still a file, not the checkpoint route.
    (root / "checkpoints").write_text("plain")
    assert client.get("/api/contents/checkpoints").json()["content"] == "plain"


def test_trust(client: httpx.Client, root: Path) -> None:
    write_notebook(root / "n.ipynb", notebook("x"))
    assert client.post("/api/contents/n.ipynb/trust").status_code == 201
    assert client.post("/api/contents/missing.ipynb/trust").status_code == 404


def test_notebooks_api_redirects_to_contents(client: httpx.Client, root: Path) -> None:
    (root / "a.txt").write_text("x")
    response = client.get("/api/notebooks/a.txt?content=0")
    assert response.status_code == 301 and response.headers["location"] == "/api/contents/a.txt?content=0"
    assert client.get("/api/notebooks/a.txt", follow_redirects=True).json()["content"] == "x"
