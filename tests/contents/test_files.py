"""GET/HEAD /files/PATH: raw bytes, content types, downloads, ranges and the same path policy."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from .conftest import notebook, write_notebook


def test_file_bytes_and_headers(client: httpx.Client, root: Path) -> None:
    data = os.urandom(300_000)
    (root / "img.png").write_bytes(data)
    response = client.get("/files/img.png")
    assert response.status_code == 200 and response.content == data
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-length"] == str(len(data))
    assert response.headers["cache-control"] == "no-cache"
    assert "sandbox" in response.headers["content-security-policy"]
    assert "last-modified" in response.headers and "etag" not in response.headers
    assert "content-disposition" not in response.headers
    assert client.get("/files/img.png?v=3").headers["cache-control"] != "no-cache"


def test_content_types(client: httpx.Client, root: Path) -> None:
    (root / "a.txt").write_text("hi")
    (root / "page.html").write_text("<p>hi</p>")
    (root / "noext").write_bytes(b"\x00\x01")
    write_notebook(root / "n.ipynb", notebook("x"))
    assert client.get("/files/a.txt").headers["content-type"].lower() == "text/plain; charset=utf-8"
    assert client.get("/files/page.html").headers["content-type"].startswith("text/html")
    assert client.get("/files/noext").headers["content-type"] == "application/octet-stream"
    response = client.get("/files/n.ipynb")
    assert response.headers["content-type"] == "application/x-ipynb+json"
    assert response.headers["content-disposition"] == "attachment; filename*=utf-8''n.ipynb"
    response = client.get("/files/a.txt", params={"download": "1"})
    assert response.headers["content-disposition"] == "attachment; filename*=utf-8''a.txt"


def test_unicode_names_and_subdirs(client: httpx.Client, root: Path) -> None:
    (root / "dé jà").mkdir()
    (root / "dé jà" / "ünï.txt").write_text("x")
    response = client.get("/files/d%C3%A9%20j%C3%A0/%C3%BCn%C3%AF.txt", params={"download": "1"})
    assert response.status_code == 200 and response.text == "x"
    assert response.headers["content-disposition"] == "attachment; filename*=utf-8''%C3%BCn%C3%AF.txt"


def test_head_and_range(client: httpx.Client, root: Path) -> None:
    (root / "a.bin").write_bytes(bytes(range(100)))
    head = client.head("/files/a.bin")
    assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == "100"
    part = client.get("/files/a.bin", headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == bytes(range(10, 20))


def test_missing_hidden_directories_and_traversal(client: httpx.Client, root: Path) -> None:
    (root / ".hidden").write_text("h")
    (root / "d").mkdir()
    (root.parent / "secret.txt").write_text("top secret")
    for path in ("missing.txt", ".hidden", "d", "", "..%2Fsecret.txt", "%2e%2e/secret.txt", "d/..%2F..%2Fsecret.txt"):
        response = client.get(f"/files/{path}")
        assert response.status_code == 404, path
        assert "top secret" not in response.text
    os.mkfifo(root / "pipe")
    assert client.get("/files/pipe").status_code == 404


def test_large_file_streams(client: httpx.Client, root: Path) -> None:
    size = 12 * 1024 * 1024
    with open(root / "big.bin", "wb") as f:
        f.truncate(size)
    received = 0
    with client.stream("GET", "/files/big.bin") as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            received += len(chunk)
    assert received == size
