"""The path policy: nothing outside the root, symlinks, hidden files, permission errors."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import Factory

TRAVERSALS = [
    "..%2Fsecret.txt",
    "%2e%2e/secret.txt",
    "%2E%2E%2Fsecret.txt",
    "sub/..%2F..%2Fsecret.txt",
    "sub/%2e%2e/%2e%2e/secret.txt",
    "..%5C..%5Csecret.txt",
    "%2Fetc%2Fpasswd",
    "..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "a%00b",
    "sub%00/../../secret.txt",
]


@pytest.fixture
def outside(root: Path) -> Path:
    """A secret file next to the root, and a subdirectory inside it."""
    (root / "sub").mkdir()
    secret = root.parent / "secret.txt"
    secret.write_text("top secret")
    return secret


@pytest.mark.parametrize("method", ["GET", "PUT", "POST", "PATCH", "DELETE"])
def test_traversal_is_refused_for_every_method(client: httpx.Client, root: Path, outside: Path, method: str) -> None:
    before = sorted(p.name for p in root.parent.iterdir())
    for path in TRAVERSALS:
        body = {"type": "file", "format": "text", "content": "pwned"} if method == "PUT" else None
        response = client.request(method, f"/api/contents/{path}", json=body)
        assert response.status_code in (400, 404), (method, path, response.status_code)
        assert "top secret" not in response.text
        if response.status_code == 404:
            assert response.json()["message"]
    assert outside.read_text() == "top secret"
    assert sorted(p.name for p in root.parent.iterdir()) == before


def test_outside_root_message(client: httpx.Client, outside: Path) -> None:
    response = client.get("/api/contents/..%2Fsecret.txt")
    assert response.status_code == 404
    assert response.json()["message"] == "../secret.txt is outside root contents directory"


def test_rename_and_copy_cannot_leave_root(client: httpx.Client, root: Path, outside: Path) -> None:
    (root / "a.txt").write_text("a")
    assert client.patch("/api/contents/a.txt", json={"path": "../moved.txt"}).status_code == 404
    assert client.post("/api/contents", json={"copy_from": "../secret.txt"}).status_code == 404
    assert client.post("/api/contents/sub", json={"copy_from": "../secret.txt"}).status_code == 404
    assert not (root.parent / "moved.txt").exists() and not (root / "sub" / "secret.txt").exists()


def test_symlink_out_of_root_refused(client: httpx.Client, root: Path, outside: Path) -> None:
    (root / "leak.txt").symlink_to(outside)
    (root / "leakdir").symlink_to(root.parent)
    assert client.get("/api/contents/leak.txt").status_code == 404
    assert client.get("/api/contents/leakdir").status_code == 404
    assert client.get("/api/contents/leakdir/secret.txt").status_code == 404
    assert client.get("/files/leak.txt").status_code == 404
    response = client.put("/api/contents/leak.txt", json={"type": "file", "format": "text", "content": "pwned"})
    assert response.status_code == 404
    response = client.put("/api/contents/leakdir/new.txt", json={"type": "file", "format": "text", "content": "x"})
    assert response.status_code == 404
    assert outside.read_text() == "top secret" and not (root.parent / "new.txt").exists()
    names = {c["name"] for c in client.get("/api/contents").json()["content"]}
    assert "leak.txt" not in names and "leakdir" not in names


def test_symlink_out_of_root_allowed_by_setting(server_with: Factory, root: Path, outside: Path) -> None:
    client = server_with(allow_symlinks_outside_root=True)
    (root / "leak.txt").symlink_to(outside)
    assert client.get("/api/contents/leak.txt").json()["content"] == "top secret"


def test_symlink_inside_root_allowed(client: httpx.Client, root: Path, outside: Path) -> None:
    (root / "sub" / "real.txt").write_text("inside")
    (root / "alias.txt").symlink_to(root / "sub" / "real.txt")
    (root / "subalias").symlink_to(root / "sub")
    body = client.get("/api/contents/alias.txt").json()
    assert body["content"] == "inside" and body["path"] == "alias.txt"
    assert [c["name"] for c in client.get("/api/contents/subalias").json()["content"]] == ["real.txt"]
    names = {c["name"] for c in client.get("/api/contents").json()["content"]}
    assert {"alias.txt", "subalias"} <= names
    # Saving through the link writes the target and keeps the link.
    client.put("/api/contents/alias.txt", json={"type": "file", "format": "text", "content": "changed"})
    assert (root / "alias.txt").is_symlink() and (root / "sub" / "real.txt").read_text() == "changed"


def test_hidden_files(client: httpx.Client, root: Path) -> None:
    (root / ".secret").write_text("s")
    (root / ".dir").mkdir()
    (root / ".dir" / "f.txt").write_text("f")
    assert client.get("/api/contents/.secret").status_code == 404
    assert client.get("/api/contents/.dir/f.txt").status_code == 404
    assert client.get("/files/.secret").status_code == 404
    for method, path, body in (
        ("PUT", ".secret", {"type": "file", "format": "text", "content": "x"}),
        ("PUT", ".new", {"type": "file", "format": "text", "content": "x"}),
        ("PUT", ".dir/f.txt", {"type": "file", "format": "text", "content": "x"}),
        ("DELETE", ".secret", None),
        ("PATCH", ".secret", {"path": "visible"}),
        ("POST", "", {"copy_from": ".secret"}),
    ):
        response = client.request(method, f"/api/contents/{path}", json=body)
        assert response.status_code == 400, (method, path, response.text)
    assert (root / ".secret").read_text() == "s" and not (root / ".new").exists()
    assert (root / ".dir" / "f.txt").read_text() == "f" and not (root / "visible").exists()


def test_hidden_files_allowed_by_setting(server_with: Factory, root: Path) -> None:
    client = server_with(allow_hidden=True)
    (root / ".env").write_text("A=1")
    assert client.get("/api/contents/.env").json()["content"] == "A=1"
    assert ".env" in {c["name"] for c in client.get("/api/contents").json()["content"]}
    response = client.put("/api/contents/.new", json={"type": "file", "format": "text", "content": "x"})
    assert response.status_code == 201


@contextlib.contextmanager
def immutable(path: Path, *, fallback: dict[Path, int]) -> Iterator[None]:
    """Make ``path`` immutable, which even root cannot bypass (chattr +i); when not root, the
    permission bits of ``fallback`` (path -> mode) do the same job."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(path)], check=True)
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        return
    saved = {p: p.stat().st_mode for p in fallback}
    for p, mode in fallback.items():
        p.chmod(mode)
    try:
        yield
    finally:
        for p, mode in saved.items():
            p.chmod(mode)


def unwritable(path: Path) -> contextlib.AbstractContextManager[None]:
    """A file this process cannot replace, rename or delete."""
    return immutable(path, fallback={path: 0o444, path.parent: 0o555})


def locked_directory(path: Path) -> contextlib.AbstractContextManager[None]:
    """A directory where no entry can be created (files inside stay writable)."""
    return immutable(path, fallback={path: 0o555})


@pytest.mark.skipif(os.geteuid() == 0 and shutil.which("chattr") is None, reason="needs chattr as root")
def test_permission_errors_are_403_and_keep_the_file(client: httpx.Client, root: Path) -> None:
    target = root / "locked.txt"
    target.write_text("original")
    with unwritable(target):
        response = client.put("/api/contents/locked.txt", json={"type": "file", "format": "text", "content": "new"})
        assert response.status_code == 403, response.text
        assert "Permission denied" in response.json()["message"] and "locked.txt" in response.json()["message"]
        assert client.delete("/api/contents/locked.txt").status_code == 403
        assert client.patch("/api/contents/locked.txt", json={"path": "moved.txt"}).status_code == 403
        assert target.read_text() == "original"
        assert sorted(p.name for p in root.iterdir()) == ["locked.txt"]  # no temp file left behind
        # The server is fine afterwards.
        assert client.get("/api/contents/locked.txt").json()["content"] == "original"


def test_unreadable_file_is_a_json_error(client: httpx.Client, root: Path) -> None:
    """A path the OS refuses (here a name too long for the file system) is a JSON 4xx, not a crash."""
    name = "x" * 300
    response = client.get(f"/api/contents/{name}")
    assert response.status_code in (400, 404) and response.json()["message"]
    response = client.put(f"/api/contents/{name}", json={"type": "file", "format": "text", "content": "x"})
    assert response.status_code == 400 and "File name too long" in response.json()["message"]


@pytest.mark.skipif(os.geteuid() == 0 and shutil.which("chattr") is None, reason="needs chattr as root")
def test_save_in_a_locked_directory_rewrites_in_place(client: httpx.Client, root: Path) -> None:
    """No temp file can be made beside it: the file is rewritten in place (as jupyter_server does),
    and the missing first checkpoint does not fail the save."""
    from .conftest import notebook, write_notebook

    (root / "ro").mkdir()
    write_notebook(root / "ro" / "n.ipynb", notebook("old"))
    with locked_directory(root / "ro"):
        response = client.put("/api/contents/ro/n.ipynb", json={"type": "notebook", "format": "json",
                                                                 "content": notebook("new")})
        assert response.status_code == 200, response.text
        assert client.get("/api/contents/ro/n.ipynb").json()["content"]["cells"][0]["source"] == "new"
        response = client.put("/api/contents/ro/other.txt", json={"type": "file", "format": "text", "content": "x"})
        assert response.status_code == 403 and "Permission denied" in response.json()["message"]
    assert sorted(p.name for p in (root / "ro").iterdir()) == ["n.ipynb"]
