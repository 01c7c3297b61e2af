"""PUT /api/contents: saves, uploads, chunked uploads, notebook formatting and bad bodies."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import nbformat
import pytest

from .conftest import Factory, notebook, write_notebook


def test_save_existing_is_200_upload_new_is_201(client: httpx.Client, root: Path) -> None:
    (root / "a.txt").write_text("old")
    response = client.put("/api/contents/a.txt", json={"type": "file", "format": "text", "content": "new"})
    assert response.status_code == 200
    assert response.headers["location"] == "/api/contents/a.txt" and "last-modified" in response.headers
    assert response.json()["content"] is None and response.json()["size"] == 3
    assert (root / "a.txt").read_text() == "new"
    response = client.put("/api/contents/b%20c.txt", json={"type": "file", "format": "text", "content": "hi"})
    assert response.status_code == 201
    assert response.headers["location"] == "/api/contents/b%20c.txt"
    assert (root / "b c.txt").read_text() == "hi"


def test_upload_base64_and_text_body_content_type(client: httpx.Client, root: Path) -> None:
    data = os.urandom(3000)
    body = json.dumps({"type": "file", "format": "base64", "content": base64.encodebytes(data).decode()})
    # JupyterLab sends some bodies as text/plain: the body is JSON whatever the content type.
    response = client.put("/api/contents/r.bin", content=body, headers={"Content-Type": "text/plain;charset=UTF-8"})
    assert response.status_code == 201
    assert (root / "r.bin").read_bytes() == data


def test_save_keeps_permissions(client: httpx.Client, root: Path) -> None:
    target = root / "script.sh"
    target.write_text("echo old")
    target.chmod(0o750)
    client.put("/api/contents/script.sh", json={"type": "file", "format": "text", "content": "echo new"})
    assert stat.S_IMODE(target.stat().st_mode) == 0o750
    assert target.read_text() == "echo new"
    assert [p.name for p in root.iterdir()] == ["script.sh"]  # no temp files left


def test_notebook_saved_like_nbformat(client: httpx.Client, root: Path) -> None:
    nb = notebook("print('é')\nx = 1", outputs=[{"output_type": "stream", "name": "stdout", "text": "é\n"}])
    nb["cells"][0]["metadata"]["trusted"] = True
    nb["metadata"]["tiny"] = 1e-05
    response = client.put("/api/contents/n.ipynb", json={"type": "notebook", "format": "json", "content": nb})
    assert response.status_code == 201
    written = (root / "n.ipynb").read_text(encoding="utf-8")
    del nb["cells"][0]["metadata"]["trusted"]
    assert written == nbformat.writes(nbformat.from_dict(nb)) + "\n"
    assert '"trusted"' not in written
    # The first save of a notebook leaves a checkpoint, as jupyter_server does.
    assert (root / ".ipynb_checkpoints" / "n-checkpoint.ipynb").read_text(encoding="utf-8") == written
    checkpoints = client.get("/api/contents/n.ipynb/checkpoints").json()
    assert [c["id"] for c in checkpoints] == ["checkpoint"]


def test_invalid_notebook_saved_with_message(client: httpx.Client, root: Path) -> None:
    nb = notebook("x")
    del nb["cells"][0]["outputs"]
    response = client.put("/api/contents/n.ipynb", json={"type": "notebook", "format": "json", "content": nb})
    assert response.status_code == 201
    assert response.json()["message"].startswith("Notebook validation failed")
    assert json.loads((root / "n.ipynb").read_text())["cells"][0]["source"] == ["x"]


def test_new_directory_by_put(client: httpx.Client, root: Path) -> None:
    response = client.put("/api/contents/newdir", json={"type": "directory"})
    assert response.status_code == 201 and response.json()["type"] == "directory"
    assert (root / "newdir").is_dir()
    (root / "f").write_text("x")
    assert client.put("/api/contents/f/sub", json={"type": "directory"}).status_code in (400, 404)


def test_bad_bodies_are_400_and_change_nothing(client: httpx.Client, root: Path) -> None:
    (root / "a.txt").write_text("keep")
    cases = [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (json.dumps({"format": "text", "content": "x"}).encode(), "No file type"),
        (json.dumps({"type": "file", "format": "text"}).encode(), "No file content"),
        (json.dumps({"type": "file", "format": "hex", "content": "x"}).encode(), "format"),
        (json.dumps({"type": "file", "format": "text", "content": 12}).encode(), "must be a string"),
        (json.dumps({"type": "file", "format": "base64", "content": "@@@"}).encode(), "Encoding error"),
        (json.dumps({"type": "file", "format": "base64", "content": "é"}).encode(), "Encoding error"),
        (json.dumps({"type": "notebook", "format": "json", "content": "text"}).encode(), "JSON object"),
        (json.dumps({"type": "notebook", "format": "json", "content": [1]}).encode(), "JSON object"),
        (json.dumps({"type": "file", "format": "text", "content": "x", "chunk": "2"}).encode(), "chunk"),
        (json.dumps({"type": "file", "format": "text", "content": "x", "chunk": 0}).encode(), "chunk"),
        (json.dumps({"type": "file", "format": "text", "content": "x", "chunk": True}).encode(), "chunk"),
        (json.dumps({"type": "notebook", "content": {}, "chunk": 1}).encode(), "not supported"),
        (json.dumps({"copy_from": "b.txt"}).encode(), "Cannot copy with PUT"),
    ]
    for body, word in cases:
        response = client.put("/api/contents/a.txt", content=body)
        assert response.status_code == 400, (body, response.text)
        assert word in response.json()["message"], (body, response.json())
    assert (root / "a.txt").read_text() == "keep"
    assert sorted(p.name for p in root.iterdir()) == ["a.txt"]


def test_failed_encoding_never_truncates(client: httpx.Client, root: Path) -> None:
    """A save whose content cannot be decoded (a lone surrogate) leaves the old file intact."""
    (root / "a.txt").write_text("precious")
    body = b'{"type": "file", "format": "text", "content": "bad \\ud800 surrogate"}'
    response = client.put("/api/contents/a.txt", content=body)
    assert response.status_code == 400 and "surrogate" in response.json()["message"]
    assert (root / "a.txt").read_text() == "precious"
    assert sorted(p.name for p in root.iterdir()) == ["a.txt"]


def test_empty_put_makes_untitled(client: httpx.Client, root: Path) -> None:
    response = client.put("/api/contents")
    assert response.status_code == 201 and response.json()["path"] == "untitled"


def test_chunked_upload_is_atomic(client: httpx.Client, root: Path) -> None:
    (root / "big.bin").write_bytes(b"previous version")
    pieces = [os.urandom(1000), os.urandom(1000), os.urandom(10)]
    for number, piece in zip((1, 2, -1), pieces, strict=True):
        response = client.put("/api/contents/big.bin", json={
            "type": "file", "format": "base64", "name": "big.bin", "chunk": number,
            "content": base64.b64encode(piece).decode()})
        assert response.status_code in (200, 201), response.text
        if number != -1:
            # Until the last chunk, the old file is untouched and nothing partial is visible.
            assert (root / "big.bin").read_bytes() == b"previous version"
            assert [c["name"] for c in client.get("/api/contents").json()["content"]] == ["big.bin"]
    assert response.json()["size"] == 2010
    assert (root / "big.bin").read_bytes() == b"".join(pieces)
    assert sorted(p.name for p in root.iterdir()) == ["big.bin"]


def test_chunk_without_start_is_400(client: httpx.Client, root: Path) -> None:
    response = client.put("/api/contents/x.bin", json={"type": "file", "format": "text", "content": "a", "chunk": 2})
    assert response.status_code == 400 and "without chunk 1" in response.json()["message"]
    assert not (root / "x.bin").exists()
    # A lone last chunk is a whole upload.
    response = client.put("/api/contents/y.txt", json={"type": "file", "format": "text", "content": "a", "chunk": -1})
    assert response.status_code == 201 and (root / "y.txt").read_text() == "a"


def test_body_over_limit_is_413(server_with: Factory, root: Path) -> None:
    client = server_with(max_body_size=4096)
    body = json.dumps({"type": "file", "format": "text", "content": "x" * 10000}).encode()
    response = client.put("/api/contents/big.txt", content=body)
    assert response.status_code == 413 and "max_body_size" in response.json()["message"]

    def chunks():  # no Content-Length: counted as it streams
        for _ in range(10):
            yield b" " * 1000
    response = client.put("/api/contents/big.txt", content=chunks())
    assert response.status_code == 413
    assert not (root / "big.txt").exists()
    ok = client.put("/api/contents/small.txt", json={"type": "file", "format": "text", "content": "x"})
    assert ok.status_code == 201


def test_saved_notebook_round_trips(client: httpx.Client, root: Path) -> None:
    nb = notebook("a\nb\n", "c")
    write_notebook(root / "n.ipynb", nb)
    before = (root / "n.ipynb").read_bytes()
    model = client.get("/api/contents/n.ipynb").json()
    client.put("/api/contents/n.ipynb", json={"type": "notebook", "format": "json", "content": model["content"]})
    assert (root / "n.ipynb").read_bytes() == before


@pytest.fixture
def small_disk(root: Path) -> Iterator[Path]:
    """root/small: a 256 KiB tmpfs, a disk that really fills up (mounting needs root)."""
    folder = root / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", str(folder)],
                             capture_output=True, text=True, timeout=30)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True, timeout=30)


def test_a_save_that_fills_the_disk_is_507_and_keeps_the_old_file(client: httpx.Client, small_disk: Path) -> None:
    (small_disk / "notes.txt").write_text("the old content\n")
    big = "x" * (400 * 1024)  # more than the whole disk
    response = client.put("/api/contents/small/notes.txt", json={"type": "file", "format": "text", "content": big})
    assert response.status_code == 507, response.text
    assert response.json()["reason"] == "Insufficient Storage"
    assert "small/notes.txt" in response.json()["message"]
    assert (small_disk / "notes.txt").read_text() == "the old content\n"  # atomic: never truncated
    assert sorted(p.name for p in small_disk.iterdir()) == ["notes.txt"]  # no temporary file left
    # The disk is usable again: a save that fits works.
    fits = client.put("/api/contents/small/notes.txt", json={"type": "file", "format": "text", "content": "new\n"})
    assert fits.status_code == 200, fits.text
    assert (small_disk / "notes.txt").read_text() == "new\n"


def test_a_notebook_save_that_fills_the_disk_is_507_and_keeps_the_old_file(
        client: httpx.Client, small_disk: Path) -> None:
    """A notebook's bytes are written while it is validated: a failed write still wins."""
    old = notebook("print(1)")
    write_notebook(small_disk / "n.ipynb", old)
    before = (small_disk / "n.ipynb").read_bytes()
    big = notebook("x = 1\n" * (80 * 1024))  # more than the whole disk
    response = client.put("/api/contents/small/n.ipynb", json={"type": "notebook", "format": "json", "content": big})
    assert response.status_code == 507, response.text
    assert "small/n.ipynb" in response.json()["message"]
    assert (small_disk / "n.ipynb").read_bytes() == before
    assert sorted(p.name for p in small_disk.iterdir()) == ["n.ipynb"]


BIG = 9 * 1024 * 1024  # past STREAM_BYTES: the content is decoded from the body piece by piece


def test_big_text_and_base64_saves_are_exact(client: httpx.Client, root: Path) -> None:
    """A body past the streaming threshold: escapes, multi-byte characters and surrogate pairs
    cut across the decoding pieces still give the exact text; base64 with line breaks the bytes."""
    line = 'plain "quoted" back\\slash tab\t nl\n é 漢 😀 \x01\n'
    text = line * (BIG // len(line) + 1)
    for ensure_ascii in (False, True):  # raw UTF-8, and \uXXXX escapes with surrogate pairs
        body = json.dumps({"type": "file", "format": "text", "content": text, "path": "t.txt"},
                          ensure_ascii=ensure_ascii)
        response = client.put("/api/contents/t.txt", content=body.encode())
        assert response.status_code in (200, 201), response.text
        assert (root / "t.txt").read_bytes().decode("utf-8") == text
        assert response.json()["size"] == len(text.encode())
    data = os.urandom(BIG)
    response = client.put("/api/contents/b.bin", json={"type": "file", "format": "base64",
                                                        "content": base64.encodebytes(data).decode()})
    assert response.status_code == 201, response.text
    assert (root / "b.bin").read_bytes() == data


def test_big_save_with_bad_content_keeps_the_old_file(client: httpx.Client, root: Path) -> None:
    (root / "t.txt").write_text("old")
    for content, problem in (("x" * BIG + "\\q", "text"), ("QUJD" * (BIG // 4) + "!", "base64")):
        raw = b'{"type": "file", "format": "' + problem.encode() + b'", "content": "' + content.encode() + b'"}'
        response = client.put("/api/contents/t.txt", content=raw)
        assert response.status_code == 400, response.text
        assert "t.txt" in response.json()["message"]
        assert (root / "t.txt").read_text() == "old"
    assert [p.name for p in root.iterdir()] == ["t.txt"]  # no temporary file left


def test_big_malformed_body_is_400_naming_the_problem(client: httpx.Client, root: Path) -> None:
    """Past the streaming threshold a body whose small fields are not JSON is refused as any
    malformed body is (the in-place parse leaves it to the JSON parser), not a 500."""
    for field in (b'"n": 1e', b'"a\\q": 1', b'"a": "\xff"'):
        raw = b'{"type": "file", "format": "text", "content": "' + b"x" * BIG + b'", ' + field + b"}"
        response = client.put("/api/contents/t.txt", content=raw)
        assert response.status_code == 400, response.text
        assert "JSON" in response.json()["message"]
    assert list(root.iterdir()) == []
